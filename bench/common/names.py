"""Names two rooms share: a trial's checkpoint files, why a trial ended, table columns.

They live here, below both the trial that writes them (``bench.run.trial``) and the
records that read them (``bench.results.records``), so neither imports the other's room.
"""

from __future__ import annotations

# Files in a trial's checkpoint folder (Tune copies the folder to the trial's storage).
CHECKPOINT_VARIABLES = "state.npz"  # model and optimizer variables (bench.run.checkpoints)
CHECKPOINT_BEST = "best.npz"  # model variables of the best validation epoch so far
CHECKPOINT_STATE = "state.json"  # epoch, MLflow run id, history, elapsed seconds
PREDICTIONS_PNG = "predictions.png"  # final checkpoint only: selected weights' predictions
CASES_FILE = "cases.parquet"  # final checkpoint only: per test case x class scores
PREDICTION_SAMPLES = 4

# Why a trial ended, as reported in its last result (``end_reason``).
END_COMPLETED, END_PATIENCE, END_TIME_BUDGET, END_NAN, END_ERROR = (
    "completed", "patience", "time_budget", "nan", "error",
)
# Ends after which the trial's selected weights are tested (a diverged trial has none
# worth testing; a scheduler stop never reaches the trial's own end).
TESTED_ENDS = (END_COMPLETED, END_PATIENCE, END_TIME_BUDGET)

# Per test case x class scores (``cases.parquet``).
CASE_METRICS = ("dice", "iou", "nsd", "hd95")
CASE_COLUMNS = ("case", "class_index", "class_name", *CASE_METRICS)

# A trial's cost, measured once at its end (``bench.run.trial.cost``).
COST_COLUMNS = ("flops", "latency_ms", "latency_p10_ms", "latency_p90_ms", "throughput",
                "peak_memory_mb", "cost_seconds")
