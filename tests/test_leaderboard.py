"""Leaderboard statistics, formats and comparisons, checked against values computed here."""

from __future__ import annotations

import argparse
import io
import json
import math
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench import leaderboard as lb
from bench.errors import UsageError

MODELS = ["testnet", "unet_shallow", "segnet_shallow"]
LOSSES = ["categorical_crossentropy", "dice"]
SEEDS = [0, 1, 2]
N_CLASSES = 3
EPOCHS = 4
# Each model x loss has a true quality; seeds scatter around it.
QUALITY = {("testnet", "categorical_crossentropy"): 0.40, ("testnet", "dice"): 0.45,
           ("unet_shallow", "categorical_crossentropy"): 0.70, ("unet_shallow", "dice"): 0.75,
           ("segnet_shallow", "categorical_crossentropy"): 0.55, ("segnet_shallow", "dice"): 0.60}
PARAMS = {"testnet": 1_234, "unet_shallow": 45_678, "segnet_shallow": 23_456}


def make_results(sweep: str = "syn", shift: float = 0.0, seed: int = 0,
                 root: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trials and history shaped like the engine's: 3 models x 2 losses x 3 seeds, where
    unet_shallow/dice seed 2 raised and testnet/dice seed 1 went NaN. With ``root``, writes
    them hive-partitioned under it, with a predictions PNG for each finished trial."""
    rng = np.random.default_rng(seed)
    png_rng = np.random.default_rng(seed + 1000)  # pictures must not change the numbers
    trials, history = [], []
    spec = f"name: {sweep}\ndataset: {{name: shapes}}\nmetric: val_mean_iou\nmode: max\n"
    for model in MODELS:
        for loss in LOSSES:
            for s in SEEDS:
                tid = f"{sweep}_{model}_{loss}_{s}"
                status, error = "TERMINATED", None
                if (model, loss, s) == ("unet_shallow", "dice", 2):
                    status, error = "ERROR", "ResourceExhaustedError: OOM when allocating"
                if (model, loss, s) == ("testnet", "dice", 1):
                    status, error = "NAN", "loss became NaN at epoch 2"
                q = QUALITY[(model, loss)] + shift
                curve = q * (1 - np.exp(-np.arange(1, EPOCHS + 1) / 1.5)) + rng.normal(0, .02,
                                                                                       EPOCHS)
                best_epoch = int(np.argmax(curve)) + 1
                per_class = np.clip(curve[best_epoch - 1] + rng.normal(0, 0.05, N_CLASSES), 0, 1)
                ok = status == "TERMINATED"
                v_best = float(curve[best_epoch - 1])
                png = None
                if root is not None and ok:
                    png = f"predictions/{tid}.png"
                    _write_png(root / png, png_rng)
                row = {
                    "sweep": sweep, "trial_id": tid, "model": model, "loss": loss,
                    "dataset": "shapes", "seed": s, "lr": 1e-3, "batch_size": 8, "epochs": EPOCHS,
                    "epochs_done": EPOCHS if ok else 2, "status": status, "error": error,
                    "params": json.dumps({"lr": 1e-3, "batch_size": 8}),
                    "val_loss": float(1 - curve[best_epoch - 1]) if ok else math.nan,
                    "val_mean_iou": float(curve[best_epoch - 1]) if ok else math.nan,
                    "val_dice_coef": float(min(1, v_best * 1.1)) if ok else math.nan,
                    "val_pixel_accuracy": float(0.5 + v_best / 2) if ok else math.nan,
                    "best_epoch": best_epoch,
                    "train_seconds": float(PARAMS[model] / 5000 + rng.random()),
                    "samples_per_second": float(5e6 / PARAMS[model] * (1 + rng.random() / 10)),
                    "n_params": PARAMS[model], "node": "localhost", "node_id": "abc",
                    "mlflow_run_id": f"run{len(trials):04d}", "mlflow_experiment_id": "1",
                    "spec": spec, "versions": json.dumps({"zoobench": "0.1.0", "keras": "3"}),
                    "started_at": pd.Timestamp("2026-11-24T10:00", tz="UTC"),
                    "ended_at": pd.Timestamp("2026-11-24T10:00", tz="UTC")
                    + pd.Timedelta(minutes=len(trials)),
                    "metric": "val_mean_iou", "mode": "max", "predictions_png": png,
                }
                for k in range(N_CLASSES):
                    row[f"val_iou_class_{k}"] = float(per_class[k]) if ok else math.nan
                trials.append(row)
                for e in range(1, (EPOCHS if ok else 2) + 1):
                    v = float(curve[e - 1])
                    history.append({
                        "sweep": sweep, "trial_id": tid, "model": model,
                        "dataset": "shapes", "seed": s, "epoch": e, "loss": 1.2 - v,
                        "val_loss": 1.0 - v, "mean_iou": v + 0.02, "val_mean_iou": v,
                        "dice_coef": v, "val_dice_coef": v, "pixel_accuracy": 0.5 + v / 2,
                        "val_pixel_accuracy": 0.5 + v / 2, "epoch_seconds": 0.5,
                        "samples_per_second": 100.0, "lr": 1e-3,
                        **{f"val_iou_class_{k}": v for k in range(N_CLASSES)},
                    })
    # history's ``loss`` is the training loss value (the conventions list ``loss`` twice);
    # which loss function a history row belongs to comes from trials via trial_id.
    t, h = pd.DataFrame(trials), pd.DataFrame(history)
    if root is not None:
        for name, frame in (("trials", t), ("history", h)):
            part = root / f"{name}.parquet" / f"sweep={sweep}"
            part.mkdir(parents=True, exist_ok=True)
            frame.drop(columns=["sweep"]).to_parquet(part / "part-0.parquet")
    return t, h


def _write_png(path: Path, rng: np.random.Generator) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (24, 72, 3), dtype=np.uint8)).save(path)


def run_cli(name: str, argv: list[str]) -> tuple[int, str]:
    """Run a registered subcommand with ``argv``; its exit status and stdout."""
    from bench.commands.base import COMMANDS

    cmd = COMMANDS.get(name)
    parser = argparse.ArgumentParser(prog=f"zoobench {name}")
    cmd.add_arguments(parser)
    buf = io.StringIO()
    with redirect_stdout(buf):
        status = cmd.run(parser.parse_args(argv))
    return status, buf.getvalue()


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    return make_results()[0]


def _expected(trials: pd.DataFrame) -> pd.DataFrame:
    """Statistics computed independently of bench.leaderboard."""
    done = trials[trials["status"] == "TERMINATED"]
    rows = []
    for (model, loss), g in done.groupby(["model", "loss"]):
        v = g["val_mean_iou"].to_numpy()
        n = len(v)
        half = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
        best = g.loc[g["val_mean_iou"].idxmax()]
        rows.append({"model": model, "loss": loss, "mean": v.mean(), "std": v.std(ddof=1),
                     "n": n, "low": v.mean() - half, "high": v.mean() + half,
                     "best": v.max(), "best_trial": best["trial_id"],
                     "best_run": best["mlflow_run_id"], "seeds": sorted(g["seed"])})
    exp = pd.DataFrame(rows).sort_values("mean", ascending=False).reset_index(drop=True)
    exp["rank"] = np.arange(1, len(exp) + 1)
    return exp


def test_aggregate_statistics_match_independent_computation(trials):
    board = lb.aggregate(trials)
    exp = _expected(trials)
    assert len(board) == len(MODELS) * len(LOSSES)
    assert list(board["model"]) == list(exp["model"]) and list(board["loss"]) == list(exp["loss"])
    np.testing.assert_allclose(board["val_mean_iou_mean"], exp["mean"], rtol=1e-12)
    np.testing.assert_allclose(board["val_mean_iou_std"], exp["std"], rtol=1e-12)
    np.testing.assert_allclose(board["val_mean_iou_ci_low"], exp["low"], rtol=1e-12)
    np.testing.assert_allclose(board["val_mean_iou_ci_high"], exp["high"], rtol=1e-12)
    np.testing.assert_allclose(board["val_mean_iou_best"], exp["best"], rtol=1e-12)
    assert list(board["count"]) == list(exp["n"])
    assert list(board["rank"]) == list(exp["rank"])
    assert list(board["best_trial_id"]) == list(exp["best_trial"])
    assert list(board["best_mlflow_run_id"]) == list(exp["best_run"])
    assert [sorted(json.loads(s)) for s in board["seeds"]] == list(exp["seeds"])


def test_failed_trials_are_excluded_and_counted(trials):
    board = lb.aggregate(trials).set_index(["model", "loss"])
    assert board.loc[("unet_shallow", "dice"), "count"] == 2
    assert board.loc[("unet_shallow", "dice"), "failed"] == 1
    assert board.loc[("testnet", "dice"), "failed"] == 1
    assert board.loc[("testnet", "categorical_crossentropy"), "failed"] == 0
    runs = json.loads(board.loc[("unet_shallow", "dice"), "mlflow_run_ids"])
    failed_run = trials.loc[trials["status"] == "ERROR", "mlflow_run_id"].item()
    assert len(runs) == 2 and failed_run not in runs


def test_single_trial_has_nan_std_and_ci_and_empty_rows_rank_last(trials):
    t = trials.copy()
    # Leave one finished trial for testnet/cce and none for segnet_shallow/dice.
    t.loc[(t["model"] == "testnet") & (t["loss"] == "categorical_crossentropy")
          & (t["seed"] > 0), "status"] = "STOPPED"
    t.loc[(t["model"] == "segnet_shallow") & (t["loss"] == "dice"), "status"] = "ERROR"
    board = lb.aggregate(t).set_index(["model", "loss"])
    one = board.loc[("testnet", "categorical_crossentropy")]
    assert one["count"] == 1 and one["unfinished"] == 2
    assert math.isnan(one["val_mean_iou_std"]) and math.isnan(one["val_mean_iou_ci_low"])
    none = board.loc[("segnet_shallow", "dice")]
    assert none["count"] == 0 and none["failed"] == 3 and math.isnan(none["val_mean_iou_mean"])
    assert none["rank"] == len(board) == board["rank"].max()


def test_metric_override_uses_min_for_losses(trials):
    board = lb.aggregate(trials, metric="val_loss")
    assert (board["mode"] == "min").all()
    means = board["val_loss_mean"].to_numpy()
    assert np.all(np.diff(means) >= 0)  # rank 1 = smallest loss
    assert list(board["rank"]) == list(range(1, len(board) + 1))


def test_ranks_are_per_sweep(trials):
    other = make_results(sweep="other", shift=-0.3, seed=1)[0]
    board = lb.aggregate(pd.concat([trials, other], ignore_index=True))
    for _, b in board.groupby("sweep"):
        assert sorted(b["rank"]) == list(range(1, len(MODELS) * len(LOSSES) + 1))


def test_leaderboard_round_trips_through_parquet(trials, tmp_path):
    board = lb.aggregate(trials)
    board.to_parquet(tmp_path / "leaderboard.parquet")
    back = pd.read_parquet(tmp_path / "leaderboard.parquet")
    np.testing.assert_allclose(back["val_mean_iou_mean"], board["val_mean_iou_mean"])
    assert list(back["best_trial_id"]) == list(board["best_trial_id"])


def test_load_results_reads_hive_partitions_of_several_sweeps(tmp_path):
    make_results("a", root=tmp_path)
    make_results("b", root=tmp_path, shift=0.1)
    t, h = lb.load_results(tmp_path)
    assert sorted(t["sweep"].unique()) == ["a", "b"] and len(t) == 36
    t, h = lb.load_results(tmp_path, sweep="b")
    assert set(t["sweep"]) == {"b"} and set(h["sweep"]) == {"b"}
    assert len(h) == int((t["epochs_done"]).sum())
    assert lb.latest_sweep(pd.concat([make_results("a")[0], make_results("b")[0]])) in {"a", "b"}


@pytest.fixture
def results(tmp_path) -> Path:
    make_results("syn", root=tmp_path)
    make_results("syn2", root=tmp_path, shift=0.2, seed=3)
    return tmp_path


def test_cli_formats(results, trials):
    status, out = run_cli("leaderboard", ["--results", str(results), "--sweep", "syn",
                                          "--format", "csv"])
    assert status == 0
    back = pd.read_csv(io.StringIO(out))
    exp = _expected(trials)
    np.testing.assert_allclose(back["val_mean_iou_mean"], exp["mean"], rtol=1e-9)
    assert list(back["rank"]) == list(range(1, 7))

    _, out = run_cli("leaderboard", ["--results", str(results), "--sweep", "syn",
                                     "--format", "json"])
    records = json.loads(out)
    assert len(records) == 6 and records[0]["model"] == exp["model"][0]
    assert records[0]["val_mean_iou_mean"] == pytest.approx(exp["mean"][0])

    _, out = run_cli("leaderboard", ["--results", str(results), "--sweep", "syn",
                                     "--format", "markdown"])
    lines = out.splitlines()
    assert lines[0].startswith("| rank | sweep | dataset | model | loss | val_mean_iou |")
    assert set(lines[1]) <= {"|", "-"} and len(lines) == 2 + 6
    assert f"{exp['mean'][0]:.4f} ± {exp['std'][0]:.4f}" in lines[2]

    _, out = run_cli("leaderboard", ["--results", str(results)])  # both sweeps
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["rank", "sweep", "dataset", "model", "loss"]
    assert len(lines) == 2 + 12


def test_cli_compare_sweeps_and_folders(results, tmp_path_factory):
    _, out = run_cli("leaderboard", ["--results", str(results), "--sweep", "syn",
                                     "--compare", "syn2", "--format", "csv"])
    cmp = pd.read_csv(io.StringIO(out))
    assert len(cmp) == 6
    # syn2 is syn shifted up by 0.2 (other noise): b is better everywhere.
    assert (cmp["diff"] > 0.1).all() and (cmp["better"] == "b").all()
    a_ci = cmp["ci_high_a"] < cmp["ci_low_b"]
    assert list(cmp["distinct"]) == list(a_ci)
    # Another folder holding a sweep of the same name.
    other = tmp_path_factory.mktemp("other")
    make_results("syn", root=other, seed=5)
    _, out = run_cli("leaderboard", ["--results", str(results), "--sweep", "syn",
                                     "--compare", str(other)])
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["dataset", "model", "loss", "mean_a", "std_a"]
    assert len(lines) == 2 + 6


def test_cli_errors_name_what_is_available(results, tmp_path):
    with pytest.raises(UsageError, match="no results folder"):
        run_cli("leaderboard", ["--results", str(tmp_path / "nope")])
    with pytest.raises(UsageError, match=r"no sweep 'x'.*choose one of: syn, syn2"):
        run_cli("leaderboard", ["--results", str(results), "--sweep", "x"])
    with pytest.raises(UsageError, match=r"unknown metric 'val_f1'.*val_mean_iou"):
        run_cli("leaderboard", ["--results", str(results), "--metric", "val_f1"])
    with pytest.raises(UsageError, match=r"--compare: no sweep 'x'.*syn, syn2"):
        run_cli("leaderboard", ["--results", str(results), "--sweep", "syn", "--compare", "x"])
    with pytest.raises(UsageError, match="several sweeps"):
        run_cli("leaderboard", ["--results", str(results), "--compare", str(results)])


def test_zoobench_main_exit_status_and_one_line_errors(results, capsys):
    from bench.cli import main

    assert main(["leaderboard", "--results", str(results), "--sweep", "syn"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 2 + 6 and "unet_shallow" in out
    assert main(["leaderboard", "--results", str(results), "--metric", "val_f1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zoobench: error: --metric: unknown metric")


def test_nullable_dtypes_as_the_engine_writes_them(trials):
    t = trials.astype({"seed": "Int64", "n_params": "Int64", "trial_id": "string",
                       "mlflow_run_id": "string", "status": "string", "model": "string",
                       "loss": "string"})
    t.loc[t["trial_id"] == "syn_testnet_dice_0", "mlflow_run_id"] = pd.NA
    board = lb.aggregate(t)
    expected = lb.aggregate(trials)
    np.testing.assert_allclose(board["val_mean_iou_mean"], expected["val_mean_iou_mean"])
    row = board[(board["model"] == "testnet") & (board["loss"] == "dice")].iloc[0]
    assert json.loads(row["seeds"]) == [0, 2]
    assert json.loads(row["mlflow_run_ids"]) == [
        trials.loc[trials["trial_id"] == "syn_testnet_dice_2", "mlflow_run_id"].item()]
