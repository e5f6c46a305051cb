"""A trial's progress: history, best epoch and its weights, time, MLflow run, checkpoints."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common.names import (
    CHECKPOINT_BEST,
    CHECKPOINT_STATE,
    CHECKPOINT_VARIABLES,
    END_COMPLETED,
    END_ERROR,
    END_NAN,
    END_PATIENCE,
    END_TIME_BUDGET,
    TESTED_ENDS,
)
from bench.run.checkpoints import (
    assign_model_arrays,
    load_arrays,
    load_state,
    model_arrays,
    npz_bytes,
    save_state,
)
from bench.run.trial.context import SweepContext
from bench.spec.stages import TUNE_STAGE
from bench.tracking.runs import TrialRun


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if not _finite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


class TrialState:
    """A trial's progress (history, best epoch, time, MLflow run): what its checkpoint holds.

    The model variables of the best validation epoch so far are kept in ``best_arrays``
    (and in every checkpoint as ``best.npz``), so the trial's end can test them.
    """

    def __init__(self, context: SweepContext, config: dict[str, Any]) -> None:
        import ray
        from ray import tune

        self.context = context
        self.config = config
        # Set once the data and model are built.
        self.info: Any = None
        self.val_sample: tuple[Any, Any] | None = None
        self.test_ds: Any = None
        self.n_params = 0
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self.run_id: str | None = None
        self.outbox_state: dict[str, Any] | None = None  # MLflow's unsent part, checkpointed
        self.best_arrays: list[np.ndarray] | None = None
        self._best_npz: bytes | None = None  # best_arrays serialised, made when they change
        tune_context = tune.get_context()
        self.trial_id = tune_context.get_trial_id()
        self.trial_name = tune_context.get_trial_name()
        self.node = socket.gethostname()
        self.node_ip = ray.util.get_node_ip_address()
        self.node_id = ray.get_runtime_context().get_node_id()
        self.run: TrialRun | None = None
        self.started_at = time.time()  # this attempt's start (a resumed trial starts again)
        self.first_step_at: float | None = None
        # Set-up seconds of this attempt (``setup_process_s``, ``setup_data_s``,
        # ``setup_model_s``; ``setup_compile_s`` once training starts).
        self.setup: dict[str, float] = {}
        self.model_built_at: float | None = None
        self.worker_trial = 1  # set by the trainable (bench.run.trial.run)
        # The trial's own start this is (bench.run.attempts), and the count its checkpoint
        # held (``starts``, ``run``; None without a checkpoint).
        self.attempt = 1
        self.restored_starts: dict[str, Any] | None = None
        self.ended_result: dict[str, Any] | None = None  # restored from an ended trial

    @property
    def tested(self) -> bool:
        """Whether this trial's end is tested: every trial but a protocol's ``tune`` stage's."""
        return self.config.get("stage") != TUNE_STAGE

    def setup_seconds(self) -> dict[str, float]:
        """The set-up seconds so far; ``setup_compile_s``: model built -> first step."""
        seconds = dict(self.setup)
        if self.first_step_at is not None and self.model_built_at is not None:
            seconds["setup_compile_s"] = self.first_step_at - self.model_built_at
        return seconds

    # ---- checkpoints
    def restore_progress(self, checkpoint_dir: Path) -> int:
        """History, elapsed time, MLflow run id and best weights; the epochs done."""
        state = json.loads((checkpoint_dir / CHECKPOINT_STATE).read_text())
        self.history = state["history"]
        self.train_seconds = state["train_seconds"]
        self.run_id = state["mlflow_run_id"]
        self.outbox_state = state.get("mlflow_outbox")
        self.restored_starts = {key: state[key] for key in ("starts", "run") if key in state}
        self.ended_result = state.get("result")  # the trial had ended: its last result
        best = checkpoint_dir / CHECKPOINT_BEST
        if best.exists():
            self._best_npz = best.read_bytes()
            self.best_arrays = load_arrays(best)
        return int(state["epoch"])

    @staticmethod
    def restore_weights(checkpoint_dir: Path, model: Any) -> None:
        """Weights and optimizer state, as the last epoch left them."""
        load_state(model, checkpoint_dir / CHECKPOINT_VARIABLES)

    def write_checkpoint(self, model: Any, epoch: int) -> Path:
        """A new temporary folder with the model, optimizer, best weights and progress."""
        folder = Path(tempfile.mkdtemp(prefix="zoobench-ckpt-"))
        save_state(model, folder / CHECKPOINT_VARIABLES)
        if self.best_arrays is not None:
            if self._best_npz is None:
                self._best_npz = npz_bytes(self.best_arrays)
            (folder / CHECKPOINT_BEST).write_bytes(self._best_npz)
        self.write_state(folder, epoch)
        return folder

    def write_state(self, folder: Path, epoch: int,
                    result: dict[str, Any] | None = None) -> None:
        """``state.json``: epoch, history, time, MLflow run id and its unsent entries; at the
        trial's own end, its last ``result`` (what a restart after it reports again)."""
        state = {"epoch": epoch, "history": self.history, "train_seconds": self.train_seconds,
                 "mlflow_run_id": self.run.run_id if self.run else self.run_id,
                 # What MLflow has not confirmed: a retry (or the driver) sends it again.
                 "mlflow_outbox": self.run.outbox.to_dict() if self.run else None,
                 # The trial's own starts so far, of which driver run (bench.run.attempts).
                 "starts": self.attempt, "run": self.context.run_token}
        if result is not None:
            state["result"] = result
        (folder / CHECKPOINT_STATE).write_text(json.dumps(state))

    # ---- per epoch
    def epoch_row(self, epoch: int, logs: dict[str, Any], epoch_seconds: float,
                  train_seconds: float) -> dict[str, Any]:
        """History row of one epoch: Keras' logs plus timing and the learning rate."""
        row: dict[str, Any] = {"epoch": epoch}
        # Keras' ``loss`` is named ``train_loss``: in the records ``loss`` is the loss's name.
        row.update({("train_loss" if key == "loss" else key): float(value)
                    for key, value in logs.items() if key != "learning_rate"})
        row["epoch_seconds"] = epoch_seconds
        row["samples_per_second"] = self.info.train_size / max(train_seconds, 1e-9)
        row["lr"] = float(self.config["lr"])
        self.train_seconds += epoch_seconds
        self.history.append(row)
        return row

    def best(self) -> dict[str, Any] | None:
        """The best epoch's row so far by the sweep's metric and mode (the first of ties)."""
        best_row, best_value = None, None
        for row in self.history:
            value = row.get(self.context.metric, float("nan"))
            if _is_better(value, best_value, self.context.mode):
                best_row, best_value = row, value
        return best_row

    def keep_if_best(self, row: dict[str, Any], model: Any) -> None:
        """Copy the model's variables when ``row`` (the epoch just ended) is the best so far."""
        best = self.best()
        if best is not None and best["epoch"] == row["epoch"]:
            self.best_arrays = model_arrays(model)
            self._best_npz = None  # serialised at the next checkpoint

    def select(self, model: Any) -> int:
        """Load the best epoch's weights into ``model``; that epoch (1-based).

        Without a best epoch (the metric was never finite) the last weights stay, and the
        last epoch is the selected one.
        """
        best = self.best()
        if best is None or self.best_arrays is None:
            return int(self.history[-1]["epoch"])
        assign_model_arrays(model, self.best_arrays, CHECKPOINT_BEST)
        return int(best["epoch"])

    def end_reason(self, row: dict[str, Any]) -> str | None:
        """Why the trial stops after this epoch, or None to go on."""
        context = self.context
        if not (_finite(row.get("train_loss")) and _finite(row.get("val_loss", 0.0))):
            return END_NAN
        if row["epoch"] >= context.epochs:
            return END_COMPLETED
        if context.patience is not None:
            best = self.best()
            if best is not None and row["epoch"] - best["epoch"] >= context.patience:
                return END_PATIENCE
        if context.time_budget_s is not None and self.train_seconds >= context.time_budget_s:
            return END_TIME_BUDGET
        return None

    def bookkeeping(self) -> dict[str, Any]:
        """Entries every result of the trial carries: where it ran, its MLflow run, time."""
        assert self.run is not None
        return {
            "train_seconds": self.train_seconds,
            "n_params": self.n_params,
            "trial_name": self.trial_name,
            "attempt_started_at": self.started_at,
            "first_step_at": self.first_step_at,
            "node": self.node,
            "node_ip": self.node_ip,
            "node_id": self.node_id,
            # Which worker process ran the last attempt, and its how-manieth trial (1: a
            # fresh process; more when ``reuse_workers`` kept it warm).
            "worker_pid": os.getpid(),
            "worker_trial": self.worker_trial,
            "attempt": self.attempt,  # the trial's own start (bench.run.attempts)
            "mlflow_run_id": self.run.run_id,
            "mlflow_experiment_id": self.context.tracking.experiment_id,
        }

    def error_result(self, message: str) -> dict[str, Any]:
        """The last result of a trial its own code failed in: a terminal ``error`` end.

        Reported instead of raising, so Tune does not retry it (the same code would fail
        the same way); lost processes and nodes still raise in Tune and are retried. The
        unsent MLflow entries travel as JSON (there is no checkpoint for them).
        """
        assert self.run is not None
        best = self.best()
        return {
            self.context.metric: math.nan,
            "epochs_done": len(self.history),
            "end_reason": END_ERROR,
            "error": message[:2000],
            "best_epoch": best["epoch"] if best else 0,
            **self.bookkeeping(),
            "mlflow_outbox": json.dumps(self.run.outbox.to_dict()),
        }

    def finish_epoch(self, row: dict[str, Any], reason: str | None, model: Any,
                     end: Callable[[TrialState, Any, Path], dict[str, Any]]
                     ) -> tuple[dict[str, Any], Path]:
        """Log the epoch to MLflow and checkpoint it; on the trial's own end, add what
        ``end(self, model, folder)`` returns (``bench.run.trial.final.end_of_trial``: the
        selected weights tested). Returns the Tune result and the checkpoint folder.
        """
        assert self.run is not None
        self.run.log_epoch(mlflow_epoch_metrics(row), row["epoch"])
        self.keep_if_best(row, model)
        # The checkpoint holds the last epoch's state (what a resume continues from).
        folder = self.write_checkpoint(model, row["epoch"])
        best = self.best()
        metrics = {
            **row,
            "epochs_done": row["epoch"],
            "end_reason": reason or "",
            "best_epoch": best["epoch"] if best else 0,
            **self.bookkeeping(),
            **self.setup_seconds(),
        }
        if reason in TESTED_ENDS:
            try:
                # A protocol's search stage is never tested (docs/trust.md): its trial ends
                # with the epoch it would have tested, and no test numbers or cases.
                metrics.update(end(self, model, folder))
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)  # nobody else will
                raise
        if reason is not None:  # with the test metrics' outbox, and the result itself
            self.write_state(folder, row["epoch"], result=metrics)
        return metrics, folder


def mlflow_epoch_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a history row under the tables' names, as MLflow logs them:
    training metrics carry ``train_`` (``mean_iou`` -> ``train_mean_iou``, as in
    ``history.parquet``); ``epoch`` is the step, not a metric."""
    from bench.results.records import renamed

    return {renamed(k, "history"): float(v) for k, v in row.items()
            if k not in ("epoch", "epoch_started_at") and isinstance(v, (int, float))
            and math.isfinite(v)}
