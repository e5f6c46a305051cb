"""Every table reads whole after a sweep whose trials all failed (pandas, pyarrow, duckdb).

The failed sweep's partitions are written by the real writer (``records.trial_rows``,
``case_rows``, ``aggregate``, ``write_table``) beside a real earlier sweep's partitions
(``results/reference``, written by an earlier release with the old column names).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from bench.results import records
from bench.results.leaderboard import aggregate, load_results
from bench.spec.model import load_spec

# Tables as release 0.1 wrote them (its reference sweep): the older names read back renamed.
REFERENCE = Path(__file__).resolve().parent / "data" / "release-0.1"


def _failed_outcome(trial_id: str, seed: int) -> records.TrialOutcome:
    """A trial whose dataset broke in the worker: an error end before any epoch."""
    return records.TrialOutcome(
        trial_id, {"model": "testnet", "loss": "dice", "seed": seed, "lr": 1e-3,
                   "batch_size": 16},
        {"end_reason": "error", "epochs_done": 0, "mlflow_run_id": f"run-{trial_id}",
         "error": "ValueError: dataset 'folder': path mydata does not exist"},
        [], None, None)


def _write_failed_sweep(root: Path) -> None:
    spec = load_spec(None, "failed")
    outcomes = [_failed_outcome("t1", 0), _failed_outcome("t2", 1)]
    trials, history = records.trial_rows(outcomes, spec, versions={}, run_ids={},
                                         experiment_id="0", png_paths={})
    trials.insert(0, "sweep", spec.name)
    for name, frame in (("trials", trials), ("history", history),
                        ("cases", records.case_rows(outcomes, spec)),
                        ("leaderboard", aggregate(trials))):
        records.write_table(root, name, spec.name, frame)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    for table in records.TABLES:
        shutil.copytree(REFERENCE / f"{table}.parquet", root / f"{table}.parquet")
    _write_failed_sweep(root)
    return root


@pytest.mark.parametrize("table", records.TABLES)
def test_every_partition_has_one_typed_schema(results: Path, table: str) -> None:
    parts = sorted((results / f"{table}.parquet").glob("sweep=*/part-0.parquet"))
    assert [p.parent.name for p in parts] == ["sweep=failed", "sweep=reference"]
    schemas = [pq.read_schema(p).remove_metadata() for p in parts]
    assert schemas[0] == schemas[1]
    assert not [f.name for f in schemas[0] if pa.types.is_null(f.type)]
    for column, kind in records.BASE_SCHEMAS[table].items():
        assert schemas[0].field(column).type == kind, column


@pytest.mark.parametrize("table", records.TABLES)
def test_pandas_pyarrow_and_duckdb_read_every_column(results: Path, table: str) -> None:
    folder = results / f"{table}.parquet"
    reference = pq.read_schema(REFERENCE / f"{table}.parquet" / "sweep=reference" /
                               "part-0.parquet").names
    expected = set(pq.read_schema(folder / "sweep=failed" / "part-0.parquet").names)
    assert expected >= {records.renamed(c, table) for c in reference}
    assert expected >= set(records.BASE_SCHEMAS[table])
    frame = pd.read_parquet(folder)
    assert set(frame.columns) == expected | {"sweep"}
    rows = {"trials": 2, "leaderboard": 1}.get(table, 0)  # no epochs, no test cases
    assert (frame["sweep"].astype(str) == "failed").sum() == rows
    table_ = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    assert set(table_.column_names) == expected | {"sweep"}
    glob = f"{folder}/*/*.parquet"
    columns = [row[0] for row in duckdb.sql(
        f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning = true)").fetchall()]
    assert set(columns) == expected | {"sweep"}
    counts = dict(duckdb.sql(f"SELECT sweep, count(*) FROM read_parquet('{glob}', "
                             f"hive_partitioning = true) GROUP BY sweep").fetchall())
    assert counts["reference"] == len(pd.read_parquet(REFERENCE / f"{table}.parquet"))
    assert counts.get("failed", 0) == rows


def test_failed_trials_have_typed_nans_and_the_reference_keeps_its_values(
        results: Path) -> None:
    trials = pd.read_parquet(results / "trials.parquet")
    failed = trials[trials["sweep"] == "failed"].set_index("trial_id")
    assert list(failed["status"]) == ["ERROR", "ERROR"]
    assert failed["val_mean_iou"].isna().all() and failed["val_mean_iou"].dtype == "float64"
    assert failed["val_iou_class_10"].isna().all()  # a column only the other sweep has
    assert list(failed["lr"]) == [1e-3, 1e-3]
    old = pd.read_parquet(REFERENCE / "trials.parquet")
    new = trials[trials["sweep"] == "reference"].set_index("trial_id").loc[old["trial_id"]]
    assert list(new["val_mean_iou"]) == list(old["val_mean_iou"])
    # The earlier release's names, renamed: train_ prefix, no _mean_mean.
    assert list(new["train_mean_iou"]) == list(old["mean_iou"])
    assert list(new["test_case_dice"]) == list(old["test_case_dice_mean"])
    assert "mean_iou" not in trials.columns and "test_case_dice_mean" not in trials.columns
    board = pd.read_parquet(results / "leaderboard.parquet")
    assert "test_case_dice_mean" in board.columns
    assert not [c for c in board.columns if c.endswith("_mean_mean")]


def test_history_times_are_timestamps_like_the_trials(results: Path) -> None:
    history = pd.read_parquet(results / "history.parquet")
    trials = pd.read_parquet(results / "trials.parquet")
    assert str(history["epoch_started_at"].dtype) == str(trials["started_at"].dtype)
    assert str(trials["ended_at"].dtype) == "datetime64[us, UTC]"
    old = pd.read_parquet(REFERENCE / "history.parquet")
    first = history[history["sweep"] == "reference"]["epoch_started_at"].min()
    assert first.timestamp() == pytest.approx(old["epoch_started_at"].min(), abs=1e-3)


def test_load_results_and_upgrade_read_old_names(results: Path, tmp_path: Path) -> None:
    trials, history = load_results(results)
    assert len(trials) == 2 + len(pd.read_parquet(REFERENCE / "trials.parquet"))
    assert "train_dice_coef" in history.columns and "dice_coef" not in history.columns
    # A folder an earlier release wrote, read as it is (no writer has touched it).
    old_trials, old_history = load_results(REFERENCE)
    assert "train_mean_iou" in old_trials.columns and "mean_iou" not in old_trials.columns
    assert isinstance(old_history["epoch_started_at"].dtype, pd.DatetimeTZDtype)
    assert records.renamed("iou_class_3", "history") == "train_iou_class_3"
    assert records.renamed("val_iou_class_3", "trials") == "val_iou_class_3"
    assert records.renamed("test_case_hd95_mean", "leaderboard") == "test_case_hd95_mean"
    assert records.renamed("test_case_hd95_mean_mean", "leaderboard") == "test_case_hd95_mean"
    assert math.isnan(float(trials.loc[trials["sweep"] == "failed", "test_mean_iou"].iloc[0]))
