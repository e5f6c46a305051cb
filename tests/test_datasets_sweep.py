"""Several datasets in one sweep (issue 15, item 1).

Bad ``datasets`` specs exit 2 with one line from a real ``zoobench`` process; a model that
cannot take a dataset is named with it (or left out with ``skip_incompatible``); the
records, the protocol's selection and the next-frame baselines work per dataset; and one
real sweep over two datasets (a third listed one fits no model and is skipped) gives
per-dataset rows, rankings within each dataset, the across table and the report's CD
diagram. The spec's own checks and the label rule are in ``tests/test_spec.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli
from tests.test_across import across_section, assert_cd_diagram_renders

SHAPES = "{name: shapes, height: 16, width: 16, classes: 3, train: 16, val: 8, test: 8}"
DIGITS = "{name: digits, height: 16, width: 16, digit_size: 8, train: 16, val: 8, test: 8}"
REST = "models: [testnet]\nlosses: [dice]\nepochs: 1\nparams: {batch_size: 8}\n"


# ---------------------------------------------------------------- bad input, from the CLI


@pytest.mark.parametrize(("datasets", "message"), [
    (f"dataset: {SHAPES}\ndatasets: [{DIGITS}]\n",
     "datasets: give either dataset (one) or datasets (a list of several), not both"),
    # Each case is a process that imports TensorFlow (~10 s); test_spec checks these two
    # messages in this process, so their real-process runs are on demand.
    pytest.param(
        "datasets: []\n",
        "datasets: must be a non-empty list of datasets, like [{name: shapes, height: 32}, "
        "{name: digits, height: 32}]; got []", marks=pytest.mark.slow),
    # The same data twice: the options in another order and a default (channels 3) written out.
    pytest.param(
        "datasets:\n  - {name: shapes, height: 16, width: 16, classes: 3}\n"
        f"  - {DIGITS}\n  - {{name: shapes, classes: 3, width: 16, height: 16, channels: 3}}\n",
        "datasets[2]: 'shapes' with these options is datasets[0] again (the same data); list "
        "it once", marks=pytest.mark.slow),
], ids=["both", "empty", "duplicate"])
def test_bad_datasets_exit_2_with_one_line_in_a_real_process(tmp_path, datasets, message):
    spec = tmp_path / "bad.yaml"
    spec.write_text(datasets + REST)
    done = subprocess.run([sys.executable, "-m", "bench", "sweep", str(spec), "--results",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    ours = [line for line in done.stderr.splitlines() if line.startswith("zoobench")]
    assert ours == [f"zoobench: error: {spec}: {message}"]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()  # nothing started


def test_a_model_that_cannot_take_a_dataset_exits_2_naming_both(tmp_path, capsys):
    spec = tmp_path / "kinds.yaml"
    # moving_digits is sequences; testnet takes images.
    spec.write_text(f"datasets:\n  - {SHAPES}\n  - {{name: moving_digits, height: 16, width: "
                    f"16, frames: 4, digit_size: 8, train: 8, val: 4, test: 4}}\n" + REST)
    assert run_cli("sweep", str(spec), "--results", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"zoobench: error: {spec}: models[0]: model 'testnet' cannot take dataset "
                   f"'moving_digits': model 'testnet' (image) needs a dataset of kind image; "
                   f"dataset 'moving_digits' is sequence (skip_incompatible: true leaves such "
                   f"cells out)"]


# ---------------------------------------------------------------- per dataset, without Ray


def _two_dataset_spec():
    from bench.spec.model import SweepDataset, SweepSpec

    return SweepSpec(name="s", datasets=(SweepDataset("shapes", {"height": 16}),
                                         SweepDataset("digits", {"height": 16})),
                     models=(), losses=(), seeds=(0,), epochs=1, params={"lr": 1e-3})


def test_records_take_the_dataset_from_the_config_or_its_cell():
    from bench.results import records
    spec = _two_dataset_spec()
    configs = [{"dataset": "digits", "model": "testnet", "loss": "dice", "seed": 0},
               {"cell": "digits | unet_shallow | focal(gamma=2)", "seed": 1},
               {"model": "testnet", "loss": "dice", "seed": 2}]  # a sweep of one: the first
    outcomes = [records.TrialOutcome(f"t{i}", config, {}, [], None, None)
                for i, config in enumerate(configs)]
    trials, _ = records.trial_rows(outcomes, spec, versions={}, run_ids={}, experiment_id="0",
                                   png_paths={})
    assert trials[["dataset", "model", "loss", "seed"]].astype(object).values.tolist() == [
        ["digits", "testnet", "dice", 0], ["digits", "unet_shallow", "focal(gamma=2)", 1],
        ["shapes", "testnet", "dice", 2]]


def test_protocol_selects_per_dataset_x_model_x_loss():
    from ray.tune.search.variant_generator import generate_variants

    from bench.spec.model import Scheduler
    from bench.spec.protocol import Protocol
    from bench.spec.stages import (
        cell_label,
        final_param_space,
        select_params,
        selection_table,
    )

    spec = replace(_two_dataset_spec(), protocol=Protocol(2, Scheduler(), (0,), (1, 2)))
    # The same model x loss on two datasets: the best lr differs, and each keeps its own.
    trials = pd.DataFrame([
        {"trial_id": "a", "dataset": "shapes", "model": "m", "loss": "l", "status":
         "TERMINATED", "val_mean_iou": 0.6, "lr": 1e-3},
        {"trial_id": "b", "dataset": "shapes", "model": "m", "loss": "l", "status":
         "TERMINATED", "val_mean_iou": 0.4, "lr": 1e-2},
        {"trial_id": "c", "dataset": "digits", "model": "m", "loss": "l", "status":
         "TERMINATED", "val_mean_iou": 0.3, "lr": 1e-3},
        {"trial_id": "d", "dataset": "digits", "model": "m", "loss": "l", "status":
         "TERMINATED", "val_mean_iou": 0.5, "lr": 1e-2},
    ])
    chosen = select_params(trials, spec)
    assert {label: values["_trial_id"] for label, values in chosen.items()} == {
        cell_label("m", "l", "shapes"): "a", cell_label("m", "l", "digits"): "d"}
    assert selection_table(chosen, spec)[["dataset", "lr"]].values.tolist() == [
        ["shapes", 1e-3], ["digits", 1e-2]]
    configs = [v["config"] for _, v in
               generate_variants({"config": final_param_space(spec, chosen)})]
    assert sorted((c["dataset"], c["model"], c["lr"], c["seed"]) for c in configs) == [
        ("digits", "m", 1e-2, 1), ("digits", "m", 1e-2, 2),
        ("shapes", "m", 1e-3, 1), ("shapes", "m", 1e-3, 2)]


def test_next_frame_baselines_are_scored_per_dataset_on_that_datasets_data():
    from bench.results import baselines
    from bench.results import leaderboard as lb
    from tests.test_next_frame import SMALL

    # Two next-frame datasets (frames of 16 and of 8 pixels) and a segmentation one.
    small = {**SMALL, "height": 8, "width": 8}
    rows = []
    for dataset, psnr in (("moving_digits[height=16,width=16]", 14.0),
                          ("moving_digits[height=8,width=8]", 12.0), ("shapes", math.nan)):
        for seed in (0, 1):
            rows.append({"sweep": "s", "trial_id": f"{dataset}{seed}", "dataset": dataset,
                         "model": "testnet", "loss": "bce", "seed": seed,
                         "status": "TERMINATED", "metric": "val_psnr", "mode": "max",
                         "val_psnr": psnr + seed, "test_psnr": psnr + seed})
    trials = pd.DataFrame(rows)
    datasets = {"moving_digits[height=16,width=16]": ("moving_digits", SMALL),
                "moving_digits[height=8,width=8]": ("moving_digits", small),
                "shapes": ("shapes", {"height": 16, "width": 16})}
    board = baselines.with_baselines(lb.aggregate(trials), trials, datasets)
    for label, (name, options) in list(datasets.items())[:2]:
        own = board[board["dataset"] == label].set_index("model")
        # Each dataset's baselines come after its ranked row, scored on its own frames.
        assert list(own.index) == ["testnet", "persistence", "mean_frame"]
        expected = baselines.baseline_scores(name, options, [0, 1])
        persistence = expected[expected["model"] == "persistence"]["test_psnr"].mean()
        assert own.loc["persistence", "test_psnr_mean"] == pytest.approx(persistence)
        assert own.loc["testnet", "gain_vs_persistence"] == pytest.approx(
            own.loc["testnet", "test_psnr_mean"] - persistence)
    assert board[board["dataset"] == "shapes"]["model"].tolist() == ["testnet"]


# ---------------------------------------------------------------- one real sweep, 2 datasets

SMALL = "{name: shapes, height: 12, width: 12, classes: 3, train: 16, val: 8, test: 8}"
SHAPES_LABEL = "shapes[height=16,width=16]"  # shapes is listed twice: its sizes tell them apart
SMALL_LABEL = "shapes[height=12,width=12]"
MODELS = ("testnet", "unet_shallow(base_filters=4)")
MULTI_SPEC = f"""\
name: multi
skip_incompatible: true
datasets:
  - {SHAPES}
  - {DIGITS}
  - {SMALL}
models: [testnet, {{unet_shallow: {{base_filters: 4}}}}]
losses: [dice]
seeds: [0, 1]
epochs: 1
params: {{batch_size: 8, lr: 1.0e-3}}
reuse_workers: true
"""
# Warm workers (reuse_workers): a worker's trials switch datasets and models in one process,
# which this checks too, and the 8 trials skip 6 worker starts (~1 min of the default suite).


@dataclass(frozen=True)
class MultiSweep:
    results: Path
    exit_code: int
    stderr: str
    trials: pd.DataFrame
    board: pd.DataFrame


# The real two-dataset sweep takes ~75 s: every test that reads it is slow (on demand),
# marked here once through the fixture's one parameter.
@pytest.fixture(scope="module", params=[pytest.param("sweep", marks=pytest.mark.slow)])
def multi(tmp_path_factory) -> MultiSweep:
    """8 trials: 2 datasets x 2 models x 1 loss x 2 seeds, 1 epoch on 16 x 16 images. The
    third dataset (12 x 12) fits neither model (both halve their input 3 times)."""
    root = tmp_path_factory.mktemp("multi")
    spec = root / "multi.yaml"
    spec.write_text(MULTI_SPEC)
    results = root / "results"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_cli("sweep", str(spec), "--results", str(results))
    trials = pd.read_parquet(results / "trials.parquet")
    board = pd.read_parquet(results / "leaderboard.parquet")
    return MultiSweep(results, code, err.getvalue(), trials, board)


def test_the_sweep_skips_the_misfit_dataset_and_runs_the_rest(multi):
    assert multi.exit_code == 0, multi.stderr
    notes = [line for line in multi.stderr.splitlines() if line.startswith("zoobench: note:")]
    assert [re.sub(r"^.*leaving out ", "", n).split(":")[0] for n in notes] == [
        f"{SMALL_LABEL} x {model} x dice" for model in MODELS]
    assert all("cannot take input_height=12" in n for n in notes)


def test_trials_hold_both_datasets_each_tested_on_its_own_data(multi):
    t = multi.trials
    assert len(t) == 8 and set(t["status"]) == {"TERMINATED"}
    cells = sorted(zip(t["dataset"], t["model"], t["seed"], strict=True))
    assert cells == sorted((d, m, s) for d in ("digits", SHAPES_LABEL) for m in MODELS
                           for s in (0, 1))
    for column in ("test_mean_iou", "test_dice_coef", "test_pixel_accuracy", "test_loss"):
        values = t[column].astype(float)
        assert np.isfinite(values).all(), column
    assert t["test_mean_iou"].between(0, 1).all() and t["test_dice_coef"].between(0, 1).all()
    # Each trial loaded its own dataset: digits has 11 classes (background + 10 digits),
    # these shapes 3; so only the digits trials have an IoU of class 10.
    digits = t["dataset"] == "digits"
    assert np.isfinite(t.loc[digits, "test_iou_class_10"].astype(float)).all()
    assert t.loc[~digits, "test_iou_class_10"].isna().all()
    assert np.isfinite(t.loc[~digits, "test_iou_class_2"].astype(float)).all()
    # The per-case table is keyed by the same labels.
    cases = pd.read_parquet(multi.results / "cases.parquet")
    assert set(cases["dataset"].astype(str)) == {"digits", SHAPES_LABEL}
    assert cases.loc[cases["dataset"] == "digits", "class_index"].max() == 10


def test_mlflow_runs_carry_the_dataset(multi):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{multi.results.resolve() / 'mlflow.db'}")
    ids = multi.trials["mlflow_run_id"].astype(str).tolist()
    for run_id, dataset in zip(ids, multi.trials["dataset"].astype(str), strict=True):
        run = client.get_run(run_id)
        assert run.data.params["dataset"] == dataset
        assert run.data.params["dataset_name"] == dataset.split("[")[0]
        assert run.data.tags["zoobench.dataset"] == dataset
        assert run.info.run_name.startswith(f"{dataset}-")
    parent = client.get_run(client.get_run(ids[0]).data.tags["mlflow.parentRunId"])
    assert parent.data.params["dataset"] == f"{SHAPES_LABEL}, digits, {SMALL_LABEL}"
    assert parent.data.params["trials"] == "8"


def test_leaderboard_ranks_within_each_dataset(multi):
    board, t = multi.board, multi.trials
    assert len(board) == 4 and set(board["metric"]) == {"test_mean_iou"}
    for dataset, rows in board.groupby("dataset"):
        rows = rows.sort_values("rank")
        assert rows["rank"].tolist() == [1, 2], dataset
        assert sorted(rows["model"]) == sorted(MODELS)
        # Each row is its dataset x model's two trials, and the ranks follow their mean.
        for row in rows.itertuples():
            own = t[(t["dataset"] == dataset) & (t["model"] == row.model)]
            assert row.count == 2
            assert row.score == pytest.approx(own["test_mean_iou"].mean())
        assert rows["score"].iloc[0] >= rows["score"].iloc[1]
        # The statistics compare the rows of this dataset only: P(first) sums to 1 over
        # its 2 rows (over all 4 rows it would be 1 across both datasets).
        assert rows["p_first"].sum() == pytest.approx(1.0)
        assert bool(rows["tied_with_best"].iloc[0]) is True
        assert math.isnan(rows["p_vs_best"].iloc[0])
        assert 0 <= rows["p_vs_best"].iloc[1] <= 1 and rows["n_vs_best"].iloc[1] == 2


def test_across_on_this_single_sweep(multi, capsys):
    assert run_cli("leaderboard", "--results", str(multi.results), "--sweep", "multi",
                   "--across") == 0
    out, err = capsys.readouterr()
    assert "Friedman over 2 datasets and 2 configurations" in err
    lines = out.splitlines()
    header = lines[0].split()
    assert header[:6] == ["config", "model", "loss", "mean_rank", "n_datasets", "complete"]
    assert {"rank_digits", f"rank_{SHAPES_LABEL}"} <= set(header)
    assert sorted(line.split("  ")[0] for line in lines[2:]) == [f"{m} x dice" for m in MODELS]
    assert run_cli("leaderboard", "--results", str(multi.results), "--sweep", "multi",
                   "--across", "--format", "csv") == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert sorted(table["model"]) == sorted(MODELS)
    assert table["n_datasets"].tolist() == [2, 2] and table["complete"].all()
    assert run_cli("leaderboard", "--results", str(multi.results), "--sweep", "multi",
                   "--across", "--format", "json") == 0
    payload = json.loads(capsys.readouterr().out)
    assert (payload["friedman"]["n"], payload["friedman"]["k"]) == (2, 2)
    # Each configuration's mean rank is the mean of its ranks on the two leaderboards.
    ranks = multi.board.groupby("model")["rank"].mean()
    assert {r["model"]: r["mean_rank"] for r in payload["table"]} == pytest.approx(
        ranks.to_dict())


def test_report_shows_per_dataset_leaderboards_and_the_cd_diagram(multi, tmp_path):
    from bench.report import build_report

    html = build_report(multi.results, sweep="multi", out=tmp_path / "r.html",
                        progress=None).read_text(encoding="utf-8")
    assert "could not be drawn" not in html
    board = html[html.index('<section id="leaderboard">'):]
    board = board[:board.index("</section>")]
    headings = re.findall(r'<h3 class="dataset">([^<]+)</h3>', board)
    assert headings == ["digits", SHAPES_LABEL]
    # One main table per dataset; the rest of each dataset's columns are folded under it.
    main = re.sub(r"<details>.*?</details>", "", board, flags=re.S)
    assert main.count("<table") == 2
    parts = re.split(r'<h3 class="dataset">', board)[1:]
    assert [part.count("<details>") >= 1 for part in parts] == [True, True]
    section = across_section(html)
    assert "<svg" in section and "CD = " in section
    assert "Friedman over 2 datasets and 2 configurations" in section
    labels = re.findall(r"<title>([^<]+ \(\d\.\d\d\))</title>", section)
    assert sorted(label.split(" x ")[0] for label in labels) == sorted(MODELS)
    assert_cd_diagram_renders(section, tmp_path)


def test_register_best_registers_each_datasets_best_model(multi):
    from mlflow import MlflowClient

    from bench.tracking.model_registry import register_best
    from bench.tracking.runs import Tracking

    uri = f"sqlite:///{multi.results.resolve() / 'mlflow.db'}"
    client = MlflowClient(uri)
    run = client.get_run(str(multi.trials["mlflow_run_id"].iloc[0]))
    track = Tracking(uri, run.info.experiment_id, run.data.tags["mlflow.parentRunId"])
    # Chosen on validation, as the sweep's register_best does (docs/trust.md).
    from bench.results import leaderboard as lb

    board = lb.aggregate(multi.trials.assign(sweep="multi"), metric="val_mean_iou")
    assert register_best(track, board, "multi-best", "multi") == 2
    versions = client.search_model_versions("name = 'multi-best'")
    got = {v.tags["zoobench.dataset"]: v.run_id for v in versions}
    top = board[board["rank"] == 1]
    assert got == dict(zip(top["dataset"], top["best_mlflow_run_id"], strict=True))
    assert register_best(track, board, "multi-best", "multi") in (1, 2)  # nothing new
    assert len(client.search_model_versions("name = 'multi-best'")) == 2
