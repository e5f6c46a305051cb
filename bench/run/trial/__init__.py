"""A Tune trial: train, report every epoch, and at its end test the selected weights.

Kept thin on purpose (Tune owns scheduling, retries and checkpoints). Modules:

- ``context``: what the trials of a sweep share (``SweepContext``) and the file names;
- ``run``: ``train_trial``, the function trainable: TensorFlow threads, data (train,
  val, test splits), model, ``model.fit`` from the checkpoint's epoch;
- ``reporter``: the Keras callback that after every epoch logs to MLflow in one batched
  call, writes a checkpoint and calls ``tune.report``;
- ``state``: the trial's history, best epoch (and its weights, kept in memory and in
  every checkpoint as ``best.npz``) and end rule;
- ``final``: at a trial's own end (completed, patience, time budget), the best epoch's
  weights are restored, tested once on the test split (``test_*``, ``selected_epoch``)
  and logged to MLflow as the trial's model; a protocol's ``tune`` stage records only
  ``selected_epoch`` (never tested: ``docs/trust.md``);
- ``cases``: per test case x class scores (``cases.parquet``).

A trial whose loss turns non-finite stops itself with reason ``nan`` (ASHA never
stops it: ``nan < cutoff`` is false) and is not tested; a trial that raises is marked
ERROR by Tune.
"""

from bench.common.names import (
    CASES_FILE,
    CHECKPOINT_BEST,
    CHECKPOINT_STATE,
    CHECKPOINT_VARIABLES,
    END_COMPLETED,
    END_NAN,
    END_PATIENCE,
    END_TIME_BUDGET,
    PREDICTIONS_PNG,
)
from bench.run.trial.context import SweepContext
from bench.run.trial.run import train_trial

__all__ = [
    "CASES_FILE", "CHECKPOINT_BEST", "CHECKPOINT_STATE", "CHECKPOINT_VARIABLES",
    "END_COMPLETED", "END_NAN", "END_PATIENCE", "END_TIME_BUDGET", "PREDICTIONS_PNG",
    "SweepContext", "train_trial",
]
