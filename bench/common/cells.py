"""A sweep's cells: one dataset x model x loss each, named by the labels the results use.

A plain grid sweep gives each trial ``dataset`` (when the spec lists several), ``model``
and ``loss`` as keys of its config. A sweep that leaves cells out (``skip_incompatible``)
cannot be a product of three grids: its config carries one ``cell`` key instead,
``"dataset | model | loss"``, and ``resolve`` turns it back into the three keys (in the
trainable, in the records and in the progress lines alike). A protocol's final stage
uses the same labels to carry each cell's chosen params.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

SEPARATOR = " | "
CELL_KEY = "cell"


class Cell(NamedTuple):
    """One dataset x model x loss of a sweep, by label (``digits[height=16]``,
    ``unet_shallow(depth=2)``, ``focal(gamma=2)``)."""

    dataset: str
    model: str
    loss: str

    @property
    def label(self) -> str:
        return cell_label(self.model, self.loss, self.dataset)


def cell_label(model: str, loss: str, dataset: str | None = None) -> str:
    """``"dataset | model | loss"``, or ``"model | loss"`` without a dataset."""
    parts = [model, loss] if not dataset else [dataset, model, loss]
    return SEPARATOR.join(str(p) for p in parts)


def parse_cell(label: str) -> dict[str, str]:
    """The ``dataset`` (when it has one), ``model`` and ``loss`` of a ``cell_label``."""
    parts = str(label).split(SEPARATOR)
    if len(parts) >= 3:
        return {"dataset": parts[0], "model": parts[1], "loss": SEPARATOR.join(parts[2:])}
    if len(parts) == 2:
        return {"model": parts[0], "loss": parts[1]}
    raise ValueError(f"not a cell label: {label!r}")


def resolve(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with ``dataset``, ``model`` and ``loss`` taken from its ``cell`` where
    absent (keys already there are kept)."""
    out = dict(config)
    cell = out.get(CELL_KEY)
    if isinstance(cell, str):
        for key, value in parse_cell(cell).items():
            out.setdefault(key, value)
    return out
