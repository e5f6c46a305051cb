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

from bench.common.errors import UsageError
from bench.results import leaderboard as lb

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
    """Statistics computed independently of bench.results.leaderboard. Rows rank by their score:
    the mean over finished and failed trials, a failed trial scoring IoU 0."""
    done = trials[trials["status"] == "TERMINATED"]
    rows = []
    for (model, loss), g in done.groupby(["model", "loss"]):
        everyone = trials[(trials["model"] == model) & (trials["loss"] == loss)]
        n_failed = int(everyone["status"].isin(["ERROR", "NAN"]).sum())
        v = g["val_mean_iou"].to_numpy()
        n = len(v)
        half = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
        best = g.loc[g["val_mean_iou"].idxmax()]
        rows.append({"model": model, "loss": loss, "mean": v.mean(), "std": v.std(ddof=1),
                     "n": n, "low": v.mean() - half, "high": v.mean() + half,
                     "best": v.max(), "best_trial": best["trial_id"],
                     "best_run": best["mlflow_run_id"], "seeds": sorted(g["seed"]),
                     "score": v.sum() / (n + n_failed)})
    exp = pd.DataFrame(rows).sort_values("score", ascending=False).reset_index(drop=True)
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
    # Not ranked (issue 30): listed last, apart, rank null.
    assert pd.isna(none["rank"]) and board.index[-1] == ("segnet_shallow", "dice")
    assert board["rank"].max() == len(board) - 1


def test_metric_override_uses_min_for_losses_ranked_within_each_loss(trials):
    board = lb.aggregate(trials, metric="val_loss")
    assert (board["mode"] == "min").all() and board["ranked_within_loss"].all()
    # val_loss of dice and of cross-entropy are on different scales: one ranking per loss.
    assert list(board["loss"]) == [LOSSES[0]] * 3 + [LOSSES[1]] * 3
    for _, b in board.groupby("loss"):
        assert np.all(np.diff(b["score"].to_numpy()) >= 0)  # rank 1 = smallest loss
        assert list(b["rank"]) == [1, 2, 3]


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
    # Both sweeps ran seeds 0, 1, 2: a paired t-test (fewer than 6 pairs) on the per-seed
    # scores, a failed seed scoring IoU 0 on its side.
    assert (cmp["test"] == "paired t").all()
    # distinct is decided on the p-values Holm-adjusted over the six rows (issue 26):
    # the i-th smallest p times (6 - i), running maximum, capped at 1.
    order = np.argsort(cmp["p"].to_numpy(), kind="stable")
    holm = np.maximum.accumulate(np.minimum(1, (6 - np.arange(6)) * cmp["p"].to_numpy()[order]))
    np.testing.assert_allclose(cmp["p_holm"].to_numpy()[order], holm)
    assert list(cmp["distinct"]) == list(cmp["p_holm"] < 0.05)
    t = pd.concat([make_results("syn")[0], make_results("syn2", shift=0.2, seed=3)[0]])
    ok = t[(t["model"] == "unet_shallow") & (t["loss"] == "categorical_crossentropy")]
    a, b = (ok[ok["sweep"] == s].sort_values("seed")["val_mean_iou"] for s in ("syn", "syn2"))
    row = cmp[(cmp["model"] == "unet_shallow") & (cmp["loss"] == "categorical_crossentropy")]
    assert row["p"].item() == pytest.approx(stats.ttest_rel(b, a).pvalue)
    assert row["n_pairs"].item() == 3
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


# ----------------------------------------------------------------------------------------
# Constructed tables whose answer is known (issue 10 item 5, issue 11 items 1-2, issue 14)


def table(rows: list[tuple], metric: str = "val_mean_iou", **extra) -> pd.DataFrame:
    """Trials from ``(model, seed, status, end_reason, value)``: value goes to ``metric``."""
    out = []
    for i, (model, seed, status, reason, value) in enumerate(rows):
        out.append({"sweep": "s", "dataset": "shapes", "model": model, "loss": "dice",
                    "trial_id": f"t{i}", "seed": seed, "status": status, "end_reason": reason,
                    metric: value, "metric": "val_mean_iou", "mode": "max",
                    "n_params": 1000 + i, **{k: v[i] for k, v in extra.items()}})
    return pd.DataFrame(out)


def paired_rows(values: dict[str, list[float]], metric: str = "val_mean_iou") -> pd.DataFrame:
    return table([(m, s, "TERMINATED", "completed", v) for m, vs in values.items()
                  for s, v in enumerate(vs)], metric=metric)


def test_row_better_on_every_seed_is_significant_at_n6():
    a = [0.70, 0.74, 0.69, 0.72, 0.75, 0.71]
    worse = [x - d for x, d in zip(a, [0.01, 0.03, 0.02, 0.05, 0.04, 0.06], strict=True)]
    board = lb.aggregate(paired_rows({"a": a, "b": worse})).set_index("model")
    assert board.loc["a", "rank"] == 1 and board.loc["a", "tied_with_best"]
    assert math.isnan(board.loc["a", "p_vs_best"])
    # Wilcoxon, all 6 differences one way: exact two-sided p = 2 / 2**6; one test, no Holm.
    assert board.loc["b", "test_vs_best"] == "wilcoxon" and board.loc["b", "n_vs_best"] == 6
    assert board.loc["b", "p_vs_best"] == pytest.approx(2 / 64)
    assert not board.loc["b", "tied_with_best"]
    assert board.loc["a", "p_first"] == 1.0 and board.loc["b", "p_first"] == 0.0
    assert (board.loc["a", "rank_low"], board.loc["a", "rank_high"]) == (1, 1)
    assert (board.loc["b", "rank_low"], board.loc["b", "rank_high"]) == (2, 2)


def test_three_rows_at_n6_use_the_paired_t_test():
    # After Holm over 2 comparisons Wilcoxon at n = 6 could never reject (2/64 > 0.05/2).
    a = [0.70, 0.74, 0.69, 0.72, 0.75, 0.71]
    b = [x - d for x, d in zip(a, [0.05, 0.06, 0.04, 0.05, 0.07, 0.05], strict=True)]
    c = [x - 0.2 for x in a]
    board = lb.aggregate(paired_rows({"a": a, "b": b, "c": c})).set_index("model")
    assert (board.loc[["b", "c"], "test_vs_best"] == "paired t").all()
    # Holm: c's p (about 0: a constant difference) is doubled, b's (the larger) kept.
    assert board.loc["b", "p_vs_best"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert board.loc["c", "p_vs_best"] < 1e-10
    assert not board.loc["b", "tied_with_best"] and not board.loc["c", "tied_with_best"]


def test_rows_equal_up_to_noise_are_tied():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.8, 6)  # seed effects both rows share
    a, b = base + rng.normal(0, 0.005, 6), base + rng.normal(0, 0.005, 6)
    board = lb.aggregate(paired_rows({"a": list(a), "b": list(b)}))
    second = board.iloc[1]
    assert second["p_vs_best"] == pytest.approx(stats.wilcoxon(a - b).pvalue)
    assert second["p_vs_best"] > 0.05 and board["tied_with_best"].all()
    assert board["p_first"].min() > 0 and board["p_first"].sum() == pytest.approx(1)
    assert list(board["rank_low"]) == [1, 1] and list(board["rank_high"]) == [2, 2]


def test_p_vs_best_is_holm_corrected_across_rows():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.6, 0.8, 8)
    rows = {"a": base, "b": base - rng.uniform(0, 0.02, 8), "c": base - 0.01
            + rng.normal(0, 0.01, 8), "d": base - rng.uniform(0.05, 0.1, 8)}
    board = lb.aggregate(paired_rows({k: list(v) for k, v in rows.items()}))
    assert board["model"].iloc[0] == "a"
    raw = [stats.wilcoxon(rows["a"] - rows[m]).pvalue for m in board["model"].iloc[1:]]
    from bench.results.stats import holm

    np.testing.assert_allclose(board["p_vs_best"].iloc[1:], holm(np.array(raw)))
    assert list(board["tied_with_best"]) == [True] + [bool(p >= 0.05) for p in holm(
        np.array(raw))]


def test_patience_and_time_budget_stops_count_as_finished():
    # Issue 11.2: A has 2 seeds stopped by patience (0.80, 0.81) and 1 completed (0.70).
    t = table([("A", 0, "STOPPED", "patience", 0.80), ("A", 1, "STOPPED", "time_budget", 0.81),
               ("A", 2, "TERMINATED", "completed", 0.70),
               ("B", 0, "TERMINATED", "completed", 0.75), ("B", 1, "TERMINATED", "completed",
                                                           0.75),
               ("B", 2, "TERMINATED", "completed", 0.76),
               ("B", 3, "STOPPED", "scheduler", 0.10), ("B", 4, "STOPPED", "interrupted", 0.2)])
    board = lb.aggregate(t).set_index("model")
    assert board.loc["A", "count"] == 3 and board.loc["A", "rank"] == 1
    assert board.loc["A", "val_mean_iou_mean"] == pytest.approx(0.77)
    # ASHA-stopped and interrupted trials stay out of the mean, and are counted.
    assert board.loc["B", "count"] == 3 and board.loc["B", "unfinished"] == 2
    assert board.loc["B", "stopped_by_scheduler"] == 1
    assert board.loc["B", "val_mean_iou_mean"] == pytest.approx(0.7533333)


def test_failed_trials_weigh_in_the_ranking():
    # 1 survivor of 3 (2 diverged) at 0.90 against 3 of 3 at 0.60: the survivor's mean is
    # higher, but its failures score IoU 0: (0.90 + 0 + 0) / 3 = 0.30 < 0.60.
    t = table([("lucky", 0, "TERMINATED", "completed", 0.90), ("lucky", 1, "NAN", "nan", None),
               ("lucky", 2, "ERROR", "error", None)]
              + [("steady", s, "TERMINATED", "completed", 0.60) for s in range(3)])
    board = lb.aggregate(t).set_index("model")
    assert board.loc["steady", "rank"] == 1 and board.loc["lucky", "rank"] == 2
    assert board.loc["lucky", "val_mean_iou_mean"] == pytest.approx(0.90)
    assert board.loc["lucky", "score"] == pytest.approx(0.30)
    assert board.loc["lucky", "count"] == 1 and board.loc["lucky", "failed"] == 2
    assert json.loads(board.loc["lucky", "seed_values"]) == {"0": 0.9, "1": 0.0, "2": 0.0}
    # An unbounded metric (a loss, lower is better): a failure scores the worst loss seen.
    t = table([("lucky", 0, "TERMINATED", "completed", 0.1), ("lucky", 1, "NAN", "nan", None),
               ("lucky", 2, "NAN", "nan", None)]
              + [("steady", s, "TERMINATED", "completed", v) for s, v in enumerate([.2, .3, .5])],
              metric="val_loss")
    board = lb.aggregate(t, metric="val_loss").set_index("model")
    assert board.loc["lucky", "score"] == pytest.approx((0.1 + 0.5 + 0.5) / 3)
    assert board.loc["steady", "rank"] == 1


def test_configuration_without_finished_trial_renders(tmp_path):
    # Issue 11.1: n_params None for one row made the column float, and ",d" crashed.
    from bench.commands.leaderboard import render

    t = table([("ok", 0, "TERMINATED", "completed", 0.5), ("ok", 1, "TERMINATED", "completed",
                                                           0.6),
               ("gone", 0, "ERROR", "error", None), ("gone", 1, "STOPPED", "scheduler", 0.3)])
    board = lb.aggregate(t)
    assert str(board["n_params"].dtype) == "Int64"
    for fmt in ("table", "markdown"):
        text = render(lb.summary(board), fmt)
        assert "1,000" in text and "gone" in text
    part = tmp_path / "trials.parquet" / "sweep=s"
    part.mkdir(parents=True)
    t.drop(columns=["sweep"]).to_parquet(part / "part-0.parquet")
    for fmt in ("table", "markdown", "csv", "json"):
        status, out = run_cli("leaderboard", ["--results", str(tmp_path), "--format", fmt])
        assert status == 0 and "gone" in out


def test_ranks_and_reports_the_test_metric_of_final_trials():
    t = table([("a", 0, "TERMINATED", "completed", 0.9), ("a", 1, "TERMINATED", "completed",
                                                          0.8),
               ("b", 0, "TERMINATED", "completed", 0.7), ("b", 1, "TERMINATED", "completed",
                                                          0.6),
               ("c", 0, "TERMINATED", "completed", 0.99)],
              test_mean_iou=[0.5, 0.4, 0.65, 0.55, 0.99],
              stage=["final", "final", "final", "final", "tune"],
              test_case_dice_mean=[0.1, 0.2, 0.3, 0.4, 0.5],
              flops=[10.0, 10.0, 20.0, 20.0, 30.0])
    board = lb.aggregate(t).set_index("model")
    assert set(board.index) == {"a", "b"}  # the search stage is not ranked
    assert (board["metric"] == "test_mean_iou").all() and (board["mode"] == "max").all()
    assert board.loc["b", "rank"] == 1  # best on test, although worse on validation
    assert board.loc["b", "test_mean_iou_mean"] == pytest.approx(0.60)
    assert board.loc["a", "val_mean_iou_mean"] == pytest.approx(0.85)
    assert board.loc["a", "test_case_dice_mean_mean"] == pytest.approx(0.15)
    assert board.loc["b", "flops_mean"] == 20.0 and "latency_ms_mean" not in board
    # Tables from before the test split (or whose test column is empty) rank on validation.
    old = lb.aggregate(t.drop(columns=["test_mean_iou"]))
    assert (old["metric"] == "val_mean_iou").all() and old["model"].iloc[0] == "a"
    empty = lb.aggregate(t.assign(test_mean_iou=math.nan))
    assert (empty["metric"] == "val_mean_iou").all()


def test_metric_option_takes_each_trials_own_best_epoch(results):
    t, h = lb.load_results(results, sweep="syn")
    tid = "syn_unet_shallow_categorical_crossentropy_0"
    # That trial's val_loss was lowest at an epoch IoU did not select.
    h.loc[(h["trial_id"] == tid) & (h["epoch"] == 1), "val_loss"] = 0.01
    board = lb.aggregate(t, metric="val_loss", history=h).set_index(["model", "loss"])
    row = board.loc[("unet_shallow", "categorical_crossentropy")]
    assert row["val_loss_best"] == pytest.approx(0.01)
    g = h[h["trial_id"].str.startswith("syn_unet_shallow_categorical_crossentropy_")]
    assert row["val_loss_mean"] == pytest.approx(g.groupby("trial_id")["val_loss"].min().mean())
    # Without history: the trials table's value (at the selected epoch).
    plain = lb.aggregate(t, metric="val_loss").set_index(["model", "loss"])
    assert plain.loc[("unet_shallow", "categorical_crossentropy"), "val_loss_best"] > 0.01
    # The CLI reads the history and says the losses are ranked apart.
    status, out = run_cli("leaderboard", ["--results", str(results), "--sweep", "syn",
                                          "--metric", "val_loss", "--format", "csv"])
    back = pd.read_csv(io.StringIO(out))
    assert status == 0 and back["ranked_within_loss"].all()


def test_aggregate_of_a_tune_stage_alone_is_an_empty_board(trials):
    # A protocol sweep's live tables before stage 2: nothing is ranked yet, nothing crashes.
    board = lb.aggregate(trials.assign(stage="tune"))
    assert board.empty and {"model", "loss", "rank", "count"} <= set(board.columns)


# ---- issue 25: configurations, selection on validation, --metric val_* ranks validation
def _validation_test_table() -> pd.DataFrame:
    """Two models x 3 seeds where validation and test disagree: model a's validation-best
    seed (1) is not its test-best (2); on validation b beats a, on test a beats b."""
    return table([("a", 0, "TERMINATED", "completed", 0.50),
                  ("a", 1, "TERMINATED", "completed", 0.80),
                  ("a", 2, "TERMINATED", "completed", 0.60),
                  ("b", 0, "TERMINATED", "completed", 0.85),
                  ("b", 1, "TERMINATED", "completed", 0.86),
                  ("b", 2, "TERMINATED", "completed", 0.87)],
                 test_mean_iou=[0.70, 0.55, 0.90, 0.40, 0.41, 0.42],
                 mlflow_run_id=["ra0", "ra1", "ra2", "rb0", "rb1", "rb2"])


def test_best_run_is_chosen_on_validation_not_test():
    board = lb.aggregate(_validation_test_table()).set_index("model")
    assert (board["metric"] == "test_mean_iou").all()  # ranked on test, as before
    assert board.loc["a", "rank"] == 1  # test means: a 0.7167, b 0.41
    # a's best run is seed 1 (validation 0.80), not seed 2 (test 0.90); its reported best
    # is that run's test value.
    assert board.loc["a", "best_seed"] == 1 and board.loc["a", "best_mlflow_run_id"] == "ra1"
    assert board.loc["a", "test_mean_iou_best"] == pytest.approx(0.55)
    assert board.loc["b", "best_mlflow_run_id"] == "rb2"
    assert board.loc["b", "test_mean_iou_best"] == pytest.approx(0.42)


def test_metric_val_mean_iou_ranks_validation(tmp_path):
    trials = _validation_test_table()
    board = lb.aggregate(trials, metric="val_mean_iou").set_index("model")
    assert (board["metric"] == "val_mean_iou").all()
    assert board.loc["b", "rank"] == 1 and board.loc["a", "rank"] == 2
    assert board.loc["b", "val_mean_iou_mean"] == pytest.approx(0.86)
    assert board.loc["a", "val_mean_iou_mean"] == pytest.approx((0.5 + 0.8 + 0.6) / 3)
    assert board.loc["a", "val_mean_iou_best"] == pytest.approx(0.80)
    # The CLI: --metric val_mean_iou ranks validation, and its JSON rows say so.
    part = tmp_path / "trials.parquet" / "sweep=s"
    part.mkdir(parents=True)
    trials.drop(columns=["sweep"]).to_parquet(part / "part-0.parquet")
    status, out = run_cli("leaderboard", ["--results", str(tmp_path), "--metric",
                                          "val_mean_iou", "--format", "json"])
    rows = json.loads(out)
    assert status == 0 and [r["metric"] for r in rows] == ["val_mean_iou"] * 2
    assert [(r["model"], r["rank"]) for r in rows] == [("b", 1), ("a", 2)]
    status, out = run_cli("leaderboard", ["--results", str(tmp_path), "--format", "json"])
    assert [(r["model"], r["metric"]) for r in json.loads(out)] == [
        ("a", "test_mean_iou"), ("b", "test_mean_iou")]


def test_register_best_refuses_a_board_ranked_on_test():
    from bench.tracking.model_registry import register_best

    board = lb.aggregate(_validation_test_table())
    with pytest.raises(ValueError, match="ranked on 'test_mean_iou'"):
        register_best(None, board, "m", "s")  # type: ignore[arg-type]
    # The sweep registers from the board ranked on validation: model b's run rb2.
    val = lb.aggregate(_validation_test_table(), metric="val_mean_iou")
    assert val.loc[val["rank"] == 1, "best_mlflow_run_id"].tolist() == ["rb2"]


def test_rows_are_configurations_when_a_cell_has_several():
    # testnet x dice, 2 samples x 3 seeds: two rows of n = 3, each its own lr.
    lrs = [1e-3] * 3 + [5e-3] * 3
    values = [0.50, 0.52, 0.54, 0.70, 0.40, 0.60]
    t = table([("testnet", s % 3, "TERMINATED", "completed", v)
               for s, v in enumerate(values)],
              lr=lrs, batch_size=[8] * 6, config_id=["c1"] * 3 + ["c5"] * 3)
    board = lb.aggregate(t).set_index("config_id")
    assert list(board["count"]) == [3, 3] and len(board) == 2
    assert board.loc["c1", "val_mean_iou_mean"] == pytest.approx(0.52)
    assert board.loc["c5", "val_mean_iou_mean"] == pytest.approx((0.7 + 0.4 + 0.6) / 3)
    assert board.loc["c1", "val_mean_iou_std"] == pytest.approx(0.02)
    assert json.loads(board.loc["c5", "hyperparameters"]) == {"batch_size": 8, "lr": 5e-3}
    assert board.loc["c5", "rank"] == 1 and board.loc["c1", "rank"] == 2
    # The paired test pairs the two configurations seed by seed: differences (0.2, -0.12,
    # 0.06), a paired t-test with 2 degrees of freedom.
    expected = stats.ttest_rel([0.70, 0.40, 0.60], [0.50, 0.52, 0.54]).pvalue
    assert board.loc["c1", "p_vs_best"] == pytest.approx(expected)
    shown = lb.summary(lb.aggregate(t))
    assert shown["config"].tolist() == ["lr=0.005", "lr=0.001"]
    # One configuration per cell: one row, no config column in the summary.
    one = lb.aggregate(t.assign(config_id="c1", lr=1e-3))
    assert len(one) == 1 and int(one["count"].iloc[0]) == 6 and "config" not in lb.summary(one)


def test_across_compares_the_configurations_of_a_cell_as_they_are(tmp_path):
    # 2 models x 2 learning rates (the same two on every dataset, as the plan draws them)
    # x 3 datasets x 3 seeds: --across ranks 4 configurations; it failed on the duplicate
    # model x loss labels before.
    rng = np.random.default_rng(3)
    rows, means = [], {}
    for dataset in ("d1", "d2", "d3"):
        for model in ("a", "b"):
            for lr in (1e-3, 1e-2):
                values = rng.random(3)
                means[(dataset, f"{model} [lr={lr:.3g}]")] = values.mean()
                for seed, v in enumerate(values):
                    rows.append({"dataset": dataset, "model": model, "loss": "dice",
                                 "seed": seed, "trial_id": f"t{len(rows)}", "lr": lr,
                                 "status": "TERMINATED", "end_reason": "completed",
                                 "val_mean_iou": v, "metric": "val_mean_iou", "mode": "max",
                                 "config_id": f"{dataset}-{model}-{lr}"})
    part = tmp_path / "trials.parquet" / "sweep=s"
    part.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(part / "part-0.parquet")
    status, out = run_cli("leaderboard", ["--results", str(tmp_path), "--across",
                                          "--format", "json"])
    payload = json.loads(out)
    assert status == 0 and payload["friedman"]["k"] == 4 and payload["friedman"]["n"] == 3
    configs = sorted({c for _, c in means})
    assert sorted(r["model"] for r in payload["table"]) == configs
    expected = stats.friedmanchisquare(*[[means[(d, c)] for d in ("d1", "d2", "d3")]
                                         for c in configs])
    assert payload["friedman"]["statistic"] == pytest.approx(expected.statistic)


def test_an_mae_metric_ranks_lower_is_better():
    """The leaderboard's direction for a metric without a sweep mode is stats.default_mode's:
    a mean absolute error (next-frame tasks) ranks lower first (issue 26)."""
    assert lb.default_mode("val_mae") == lb.default_mode("test_frame_mae") == "min"
    assert lb.default_mode("val_mean_iou") == "max"
    trials = pd.DataFrame({
        "sweep": "s", "dataset": "d", "model": ["good", "bad"], "loss": "mse", "seed": 0,
        "status": "TERMINATED", "test_mae": [0.1, 0.4]})
    board = lb.aggregate(trials, metric="test_mae")
    assert board.set_index("model").loc["good", "rank"] == 1
