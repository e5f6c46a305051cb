"""What a trial reports to Tune: the numbers Tune acts on, and the rest as one JSON text.

Tune keeps, for every trial, running statistics of every number in its results (max, min,
mean, last, the means of the last 5 and 10: ``metric_analysis`` and ``metric_n_steps``)
and writes them all into each snapshot of the experiment. A zoobench result has 60 to 120
numbers (per-class scores, test metrics, cost, timings); their statistics were three
quarters of a trial's 60 KB in the snapshot, which Tune rewrites every few seconds, so the
driver's cost per trial grew with the sweep. Tune needs only the sweep's metric (its
schedulers and searchers rank by it), the epoch and the attempt; the rest travels as the
text ``details``, which Tune stores once and does not analyse, and ``unpack`` gives the
driver the whole result back. ``training_iteration`` and Tune's other keys are its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from numbers import Integral, Number
from typing import Any

DETAILS = "details"
#: Numbers kept beside the sweep's metric: what the driver's progress and attempt counts
#: read from Tune's trials while they run.
KEPT = ("epoch", "epochs_done", "attempt")


def pack(result: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """``result`` as Tune is to get it: ``metric``, ``KEPT`` and the texts as they are, the
    other numbers in ``details`` (JSON; NaN and infinities kept as JSON's NaN/Infinity)."""
    kept: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for key, value in result.items():
        if key == metric or key in KEPT or not isinstance(value, Number):
            kept[key] = value
        else:
            details[key] = _plain(value)
    if details:
        kept[DETAILS] = json.dumps(details, allow_nan=True)
    return kept


def unpack(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """A result as the trial made it: ``details`` spread back into it. A result without
    ``details`` (an older zoobench's, or a fake in tests) is returned as it is."""
    out = dict(result or {})
    text = out.pop(DETAILS, None)
    if isinstance(text, str):
        out.update(json.loads(text))
    elif text is not None:
        out[DETAILS] = text  # not ours: left alone
    return out


def _plain(value: Any) -> int | float:
    """``value`` as a Python number, which JSON takes (NumPy's scalars it does not)."""
    if isinstance(value, int):  # bools too: they stay bools
        return value
    return int(value) if isinstance(value, Integral) else float(value)
