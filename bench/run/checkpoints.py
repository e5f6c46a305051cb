"""A trial's training state (model and optimizer variables) in one ``.npz`` file.

Why not ``model.save_weights``: it walks the model's object graph in Python and costs
~0.2 s per call for a 0.5M-parameter U-Net on 2 cores, against ~0.04 s for reading the
variables and writing them with NumPy, and a trial checkpoints after every epoch
(``python tests/perf/sweep_overhead.py`` prints the per-epoch cost). The file holds
every variable of ``model.variables`` (weights, batch-norm statistics, seed-generator
state) and then of ``model.optimizer.variables`` (iteration, moments, loss scale), in
that order: the same code builds the same model and optimizer with the variables in
the same order, so loading assigns them back by position and checks each shape.

A trial also keeps the model variables of its best validation epoch (``model_arrays``),
in memory and, as ``npz_bytes``, in every checkpoint, so a resumed trial still tests the
weights its selection chose.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["assign_model_arrays", "load_arrays", "load_state", "model_arrays", "npz_bytes",
           "save_state"]


def _state_variables(model: Any) -> list[Any]:
    return [*model.variables, *model.optimizer.variables]


def save_state(model: Any, path: Path) -> None:
    """Write the variables of a compiled ``model`` and of its optimizer to ``path`` (.npz)."""
    arrays = {f"v{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(_state_variables(model))}
    with open(path, "wb") as file:  # an open file: np.savez would append ".npz" to a name
        np.savez(file, **arrays)


def load_state(model: Any, path: Path) -> None:
    """Assign the variables saved by :func:`save_state` to ``model`` and its optimizer.

    ``model`` must be built and compiled the way the saved one was; its optimizer is
    built here so that its variables exist. A mismatch is a ``ValueError`` naming the
    first variable that differs.
    """
    model.optimizer.build(model.trainable_variables)
    variables = _state_variables(model)
    with np.load(path) as saved:
        if len(saved.files) != len(variables):
            raise ValueError(
                f"{path}: holds {len(saved.files)} variables, the model and optimizer have "
                f"{len(variables)}: it was saved from another model or optimizer"
            )
        for i, variable in enumerate(variables):
            value = saved[f"v{i:05d}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"{path}: variable {i} ({variable.path}) has shape {tuple(variable.shape)}"
                    f", the checkpoint {tuple(value.shape)}"
                )
            variable.assign(value)


def model_arrays(model: Any) -> list[np.ndarray]:
    """Copies of ``model.variables`` (weights and batch-norm statistics), in order."""
    return [np.array(v.numpy(), copy=True) for v in model.variables]


def npz_bytes(arrays: list[np.ndarray]) -> bytes:
    """``arrays`` as the bytes of an ``.npz`` file (``v00000``, ``v00001``, ...)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{f"v{i:05d}": a for i, a in enumerate(arrays)})
    return buffer.getvalue()


def load_arrays(path: Path) -> list[np.ndarray]:
    """The arrays of an ``.npz`` written from :func:`npz_bytes`, in order."""
    with np.load(path) as saved:
        return [saved[name] for name in sorted(saved.files)]


def assign_model_arrays(model: Any, arrays: list[np.ndarray], where: str = "arrays") -> None:
    """Assign :func:`model_arrays`' output back to ``model.variables``.

    A count or shape mismatch is a ``ValueError`` naming ``where`` and the variable.
    """
    variables = model.variables
    if len(arrays) != len(variables):
        raise ValueError(f"{where}: holds {len(arrays)} arrays, the model has "
                         f"{len(variables)} variables")
    for variable, value in zip(variables, arrays, strict=True):
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{where}: variable {variable.path} has shape "
                             f"{tuple(variable.shape)}, the saved one {tuple(value.shape)}")
        variable.assign(value)
