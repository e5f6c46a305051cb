"""The Tune trainable (kept as the import path of ``train_trial`` and the names the driver
reads): the code lives in the ``bench.run.trial`` package."""

from bench.run.trial.context import (
    CASES_FILE,
    CHECKPOINT_BEST,
    CHECKPOINT_STATE,
    CHECKPOINT_VARIABLES,
    END_COMPLETED,
    END_NAN,
    END_PATIENCE,
    END_TIME_BUDGET,
    PREDICTIONS_PNG,
    TESTED_ENDS,
    SweepContext,
)
from bench.run.trial.run import configure_tensorflow, train_trial
from bench.run.trial.state import TrialState

__all__ = [
    "CASES_FILE", "CHECKPOINT_BEST", "CHECKPOINT_STATE", "CHECKPOINT_VARIABLES",
    "END_COMPLETED", "END_NAN", "END_PATIENCE", "END_TIME_BUDGET", "PREDICTIONS_PNG",
    "TESTED_ENDS", "SweepContext", "TrialState", "configure_tensorflow", "train_trial",
]
