"""Tune's own per-trial files (``result.json``, ``progress.csv``, TensorBoard events) left out.

By default Tune's driver adds three logger callbacks that write, for every trial, its
config (``params.json``, ``params.pkl``), every result (``result.json``,
``progress.csv``) and a TensorBoard events file, into the experiment's staging folder on
the driver. Every experiment snapshot (at least every 10 s) then copies that whole folder
to the storage path (``pyarrow.fs.copy_files``), every trial's files again: at 1,000
trials, 5,000 files and 0.4-0.5 s of the driver's CPU per snapshot, a cost per finished
trial that grows with the sweep. The TensorBoard writer costs 3.3 ms more per trial and a
thread while the trial runs.

zoobench has every number in its own tables and MLflow, and its Tune results carry a
handful of keys beside one JSON text (``bench.common.tune_result``), so these files held
nothing a user reads. A sweep's driver therefore runs Tune without them
(``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``), unless the user set that variable: ``=0``
brings them back. Only the trials' checkpoints and zoobench's own files are in the trial
folders then.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from bench.common.environment import variable_set

VARIABLE = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"


class _WithoutMissingFiles(logging.Filter):
    """Drops Tune's warning that a trial's ``result.json`` and ``progress.csv`` are missing
    (``ExperimentAnalysis`` looks for them; zoobench reads its results elsewhere)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to fetch metrics for" not in record.getMessage()


_FILTER = _WithoutMissingFiles()


@contextmanager
def without_tune_files() -> Iterator[bool]:
    """Within the block, Tune's ``fit`` adds no logger callbacks of its own, unless
    ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS`` is set already (``=0``: they are added); yields
    True when they are left out. Tune reads the variable in ``fit``, for a new and a
    restored experiment alike. The variable is put back after the block, so a notebook's
    own Tune runs keep Tune's defaults."""
    analysis_log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    with variable_set(VARIABLE, "1", override=False) as value:
        left_out = value == "1"
        if left_out:
            analysis_log.addFilter(_FILTER)
        try:
            yield left_out
        finally:
            analysis_log.removeFilter(_FILTER)
