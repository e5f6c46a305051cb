"""Live tables as per-trial parts (bench.run.live_tables, records.write_part / compact): read
back by pandas, pyarrow, DuckDB and load_results as one table with each trial once, while
trials run, end, resume and after compaction; the callback pickles without its rows."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from ray.tune import Checkpoint

from bench.results import records
from bench.results.leaderboard import load_results
from bench.run.live_tables import LiveTables
from bench.spec.model import parse_spec

SPEC = """\
name: live
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 16, val: 8}
models: [testnet]
losses: [dice]
seeds: [0, 1, 2]
epochs: 2
params: {batch_size: 8, lr: 1.0e-3}
"""


def _trials(root: Path, n: int) -> list[SimpleNamespace]:
    """``n`` of Tune's trials as the callback reads them, each with a checkpoint of 2 epochs
    whose val_mean_iou is 0.1 * (trial index + 1) at its second epoch."""
    trials = []
    for i in range(n):
        folder = root / f"ckpt{i}"
        folder.mkdir()
        history = [{"epoch": e, "val_loss": 1.0 / e, "val_mean_iou": 0.1 * (i + 1) * e / 2}
                   for e in (1, 2)]
        (folder / "state.json").write_text(json.dumps({"epoch": 2, "history": history}))
        last = {**history[-1], "end_reason": "completed", "training_iteration": 2,
                "timestamp": time.time(), "time_total_s": 5.0}
        trials.append(SimpleNamespace(
            trial_id=f"t{i}", path=str(root / f"t{i}"),
            config={"model": "testnet", "loss": "dice", "seed": i, "lr": 1e-3,
                    "batch_size": 8},
            last_result=last, has_reported_at_least_once=True,
            checkpoint=Checkpoint.from_directory(str(folder)), status="PENDING",
            num_failures=0, error_file=None))
    return trials


def _read_all(results: Path) -> dict[str, pd.DataFrame]:
    """The trials table as pandas, DuckDB and load_results read it."""
    import duckdb

    glob = (results / "trials.parquet" / "sweep=*" / "*.parquet").as_posix()
    return {"pandas": pd.read_parquet(results / "trials.parquet"),
            "duckdb": duckdb.sql(f"select * from read_parquet('{glob}', hive_partitioning=true, "
                                 f"union_by_name=true)").df(),
            "load_results": load_results(results)[0]}


def _statuses(frame: pd.DataFrame) -> dict[str, str]:
    assert frame["trial_id"].is_unique, list(frame["trial_id"])
    return dict(zip(frame["trial_id"].astype(str), frame["status"].astype(str), strict=True))


def test_parts_read_as_one_table_with_each_trial_once(tmp_path):
    spec = parse_spec(SPEC, "test")
    results = tmp_path / "results"
    trials = _trials(tmp_path, 3)
    live = LiveTables(results, spec, "final", "0", {}, board_every_s=0.0)
    trials[0].status = trials[1].status = "RUNNING"
    live.trial_ended(trials, trials[0], "TERMINATED")  # t1 still training: RUNNING
    trials[0].status, trials[2].status = "TERMINATED", "RUNNING"
    for reader, frame in _read_all(results).items():
        assert _statuses(frame) == {"t0": "TERMINATED", "t1": "RUNNING"}, reader
    board = pd.read_parquet(results / "leaderboard.parquet")
    assert board["count"].tolist() == [1]  # finished trials only: t1 is still running
    live.trial_ended(trials, trials[1], "TERMINATED")  # its RUNNING part is replaced
    trials[1].status = "TERMINATED"
    live.trial_ended(trials, trials[2], "ERROR")
    trials[2].status = "ERROR"
    for reader, frame in _read_all(results).items():
        assert _statuses(frame) == {"t0": "TERMINATED", "t1": "TERMINATED",
                                    "t2": "ERROR"}, reader
        assert frame.set_index("trial_id")["val_mean_iou"].astype(float).round(6).to_dict() \
            == {"t0": 0.1, "t1": 0.2, "t2": 0.3}, reader
    history = load_results(results)[1]
    assert sorted(zip(history["trial_id"], history["epoch"], strict=True)) == [
        (t, e) for t in ("t0", "t1", "t2") for e in (1, 2)]
    folder = records.table_path(results, "trials", "live").parent
    assert sorted(p.name for p in folder.iterdir()) == [
        records.SCHEMA_PART, "part-t0.parquet", "part-t1.parquet", "part-t2.parquet"]

    # The end of the sweep: one part-0 per table, the same rows.
    final = pd.read_parquet(results / "trials.parquet").drop(columns=["sweep"])
    records.compact(results, "trials", "live", final)
    assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]
    assert not list(results.glob(".*compact*"))  # the staging folder is gone
    for reader, frame in _read_all(results).items():
        assert _statuses(frame) == {"t0": "TERMINATED", "t1": "TERMINATED",
                                    "t2": "ERROR"}, reader


def test_pickle_leaves_the_rows_out_and_a_resumed_trial_is_read_once(tmp_path):
    spec = parse_spec(SPEC, "test")
    results = tmp_path / "results"
    trials = _trials(tmp_path, 3)
    live = LiveTables(results, spec, "final", "0", {}, board_every_s=0.0)
    empty = len(pickle.dumps(live))
    for trial in trials[:2]:
        live.trial_ended(trials, trial, "TERMINATED")
        trial.status = "TERMINATED"
    assert len(pickle.dumps(live)) == empty  # the cache does not travel with Tune's state
    # The sweep was interrupted and compacted with t1 unfinished; t1 and t2 run again.
    frame = pd.read_parquet(results / "trials.parquet").drop(columns=["sweep"])
    frame.loc[frame["trial_id"] == "t1", "status"] = "STOPPED"
    records.compact(results, "trials", "live", frame)
    records.compact(results, "history", "live",
                    pd.read_parquet(results / "history.parquet").drop(columns=["sweep"]))
    resumed = pickle.loads(pickle.dumps(live))
    trials[1].status = "RUNNING"
    resumed.trial_ended(trials, trials[1], "TERMINATED")
    trials[1].status = "TERMINATED"
    resumed.trial_ended(trials, trials[2], "TERMINATED")
    trials[2].status = "TERMINATED"
    resumed.on_experiment_end(trials)  # the last leaderboard, however recent the one before
    for reader, read in _read_all(results).items():
        assert _statuses(read) == {"t0": "TERMINATED", "t1": "TERMINATED",
                                   "t2": "TERMINATED"}, reader
    history = load_results(results)[1]
    assert sorted(zip(history["trial_id"], history["epoch"], strict=True)) == [
        (t, e) for t in ("t0", "t1", "t2") for e in (1, 2)]
    # The leaderboard counts the trial it read from disk (t0) and the two ended since.
    board = pd.read_parquet(results / "leaderboard.parquet")
    assert board["count"].tolist() == [3]
    assert sorted(json.loads(board["trial_ids"].iloc[0])) == ["t0", "t1", "t2"]


def test_a_column_null_in_one_part_and_typed_or_new_in_a_later_one_reads_whole(tmp_path):
    first = pd.DataFrame({"trial_id": ["a"], "optimizer": [None], "lr": [1e-3]})
    second = pd.DataFrame({"trial_id": ["b"], "optimizer": ["adam"], "lr": [1e-2],
                           "test_mean_iou": [0.5]})
    records.write_part(tmp_path, "trials", "s", "a", first)
    records.write_part(tmp_path, "trials", "s", "b", second)
    frame = pd.read_parquet(tmp_path / "trials.parquet").sort_values("trial_id")
    assert frame["optimizer"].tolist()[1] == "adam" and pd.isna(frame["optimizer"].iloc[0])
    assert frame["lr"].tolist() == [1e-3, 1e-2]
    assert pd.isna(frame["test_mean_iou"].iloc[0]) and frame["test_mean_iou"].iloc[1] == 0.5


def test_the_leaderboard_is_refreshed_once_per_tenth_of_its_rows(tmp_path):
    """A refresh costs O(trials): it runs once a tenth as many trials as the board has rows
    have ended since the last, so its cost per trial end stays flat; it never lags more
    than that, and the experiment's end brings it up to date."""
    spec = parse_spec(SPEC, "test")
    results = tmp_path / "results"
    trials = _trials(tmp_path, 40)
    now = [0.0]  # a clock on which refreshes take no time and a minute passes per end
    live = LiveTables(results, spec, "final", "0", {}, clock=lambda: now[0])
    counts = []  # trials the leaderboard counted after each trial end
    for ended, trial in enumerate(trials, start=1):
        now[0] += 60.0
        live.trial_ended(trials, trial, "TERMINATED")
        trial.status = "TERMINATED"
        board = pd.read_parquet(results / "leaderboard.parquet")
        counts.append(int(board["count"].sum()))
        assert ended - counts[-1] <= 0.1 * counts[-1] + 1, (ended, counts[-1])
    refreshes = len(set(counts))
    # one per end up to 11 rows, then one per ceil(rows / 10) ends: 21 for 40 ends
    assert counts[:11] == list(range(1, 12)) and counts[11:13] == [11, 13]
    assert refreshes == 21, counts
    assert counts[-1] < 40  # the last ends wait for the next refresh...
    live.on_experiment_end(trials)  # ...which the experiment's end forces
    assert int(pd.read_parquet(results / "leaderboard.parquet")["count"].sum()) == 40
