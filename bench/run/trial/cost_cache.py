"""Cost figures measured once per architecture and input, not once per trial.

A trained model's cost (``bench.run.trial.cost``: ``flops``, ``latency_ms`` and its
percentiles, ``throughput``, ``peak_memory_mb``) depends on the architecture (model name
and options, classes out), the input shape, the batch size it is timed at (the training
batch) and the precision settings (``mixed_precision``, ``xla``), but on none of the loss,
seed, learning rate or weights. So the first tested trial of such a key measures it and
writes the figures to ``<data cache>/cost/<key>.json`` (the sweep's dataset cache,
``bench.run.data_cache``: made per sweep run, on the driver's machine, removed at its
end); every later trial with that key reads them back, and its ``cost_seconds`` is what
reading took. Trials that end together (a sweep's trials of one architecture run side
by side) measure once too: the measuring trial holds ``<key>.lock`` (``flock``), and a
trial that finds it held does the rest of its end first (its MLflow model) and then
waits for the figures (``cost_or_later``), so its slot is not spent measuring what
another slot measures, and the measurement does not share the machine with a twin. A
trial on another machine (no cache folder there), or where the folder refuses a lock,
measures its own; files are whole (written through a rename) either way.

``peak_memory_mb`` is the process's peak over the trial (training included), so a later
trial with the same key is given the first one's figure: same model and batch, same
data shape, so the same allocations up to the allocator's noise.
``n_params`` is counted when the model is built (``model.count_params()``), not here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.common.file_lock import file_lock
from bench.run.trial.state import TrialState

COST_FOLDER = "cost"  # under the sweep run's data cache folder


def cost_key(model: str, options: Mapping[str, Any], input_shape: tuple[int, ...],
             n_classes: int, batch_size: int, *, task: str = "", mixed_precision: str = "",
             xla: bool = False) -> str:
    """16 hex digits of the SHA-256 of what a model's cost depends on (options in any
    order give the same key)."""
    text = json.dumps({"model": model, "options": dict(sorted(options.items())),
                       "input_shape": [int(d) for d in input_shape],
                       "n_classes": int(n_classes), "batch_size": int(batch_size),
                       "task": task, "mixed_precision": mixed_precision, "xla": bool(xla)},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_cost(folder: Path | None, key: str,
                measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """The cost figures stored under ``key`` in ``folder``, else ``measure()`` (stored when
    every figure is finite: a failed measurement is tried again by the next trial).

    ``folder``: the sweep's data cache folder; None or absent (another machine): measured.
    """
    return cost_or_later(folder, key, measure)()


def cost_or_later(folder: Path | None, key: str,
                  measure: Callable[[], dict[str, float]]) -> Callable[[], dict[str, float]]:
    """``cached_cost``'s figures as a call that gives them: known now (stored already, or
    measured now under ``key``'s lock), or, while another trial holds that lock, read when
    called, after its measurement (the call waits for the lock; finding nothing stored, a
    failed measurement, it measures itself). Do the other work of a trial's end before
    the call. ``cost_seconds`` is what this trial spent on its figures: measuring, or
    waiting and reading.
    """
    if folder is None or not Path(folder).is_dir():
        figures = measure()
        return lambda: figures
    path = Path(folder) / COST_FOLDER / f"{key}.json"
    start = time.perf_counter()
    stored = _read(path, start)
    if stored is not None:
        return lambda: stored
    with file_lock(path.with_suffix(".lock"), wait=False) as held:
        if held is not False:  # held, or a folder that refuses locks: measure here
            figures = _read(path, start) or _measure(path, measure)
            return lambda: figures

    def later() -> dict[str, float]:
        waited = time.perf_counter()
        with file_lock(path.with_suffix(".lock")):
            return _read(path, waited) or _measure(path, measure)

    return later


def _read(path: Path, start: float) -> dict[str, float] | None:
    """The figures stored at ``path`` with ``cost_seconds`` the time since ``start``; None
    when there are none or they cannot be read (then measured again and replaced)."""
    if not path.exists():
        return None
    try:
        figures = {k: float(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return None
    figures["cost_seconds"] = time.perf_counter() - start
    return figures


def _measure(path: Path, measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    figures = measure()
    if figures and all(math.isfinite(v) for v in figures.values()):
        with contextlib.suppress(OSError):  # a full disk costs the next trial time, no more
            _write(path, figures)
    return figures


def _write(path: Path, figures: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(figures, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def trial_cost_cached(trial: TrialState, model: Any, forward: Any = None) -> dict[str, float]:
    """``bench.run.trial.cost.trial_cost`` of ``trial``'s selected model, measured once per
    ``cost_key`` of the sweep run (see the module docstring)."""
    return trial_cost_later(trial, model, forward)()


def trial_cost_later(trial: TrialState, model: Any,
                     forward: Any = None) -> Callable[[], dict[str, float]]:
    """``trial_cost_cached`` as ``cost_or_later`` gives it: call it for the figures after
    the rest of the trial's end."""
    from bench.run.trial.cost import trial_cost

    name, options = trial.context.models[trial.config["model"]]
    shape = tuple(trial.info.input_shape)
    batch_size = int(trial.config["batch_size"])
    key = cost_key(name, options, shape, trial.info.n_classes, batch_size,
                   task=str(trial.info.task), mixed_precision=trial.context.mixed_precision,
                   xla=trial.context.xla)
    folder = Path(trial.context.data_cache) if trial.context.data_cache else None
    return cost_or_later(folder, key, lambda: trial_cost(model, shape, batch_size,
                                                         forward=forward))
