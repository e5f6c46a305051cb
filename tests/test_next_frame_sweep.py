"""Next-frame sweeps from the CLI (issue 17): ConvLSTMs on sequences, image models on
stacked frames; the leaderboard carries the persistence and mean-frame rows.

The default test runs one model per layout at 16x16 for 1 epoch; the full one (all four
ConvLSTMs and three image models, 32x32) is marked slow.
"""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from bench.report.sections.rollout import step_means
from tests.conftest import run_cli

DATA = ("{{name: moving_digits, height: {size}, width: {size}, digit_size: 8, frames: 4, "
        "train: 8, val: 4, test: 4, target: next_frame{extra}}}")
SPEC = """\
name: {name}
dataset: {data}
models: {models}
losses: [binary_crossentropy]
seeds: [0]
epochs: 1
params: {{batch_size: 4}}
"""


def run_next_frame_sweep(tmp_path, name: str, models: list[str], size: int,
                         extra: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(SPEC.format(name=name, models=f"[{', '.join(models)}]",
                                data=DATA.format(size=size, extra=extra)))
    results = tmp_path / "results"
    assert run_cli("sweep", str(spec), "--results", str(results)) == 0
    board = pd.read_parquet(results / "leaderboard.parquet")
    trials = pd.read_parquet(results / "trials.parquet")
    return board[board["sweep"] == name], trials[trials["sweep"] == name]


def check_board(board: pd.DataFrame, trials: pd.DataFrame, models: list[str]) -> None:
    assert set(board["model"]) == {*models, "persistence", "mean_frame"}
    assert (board["metric"] == "test_psnr").all()  # the tested twin of the spec's val_psnr
    base = board.set_index("model").loc[["persistence", "mean_frame"]]
    assert (base["loss"] == "-").all() and (base["count"] == 1).all() and base["baseline"].all()
    for column in ("val_psnr_mean", "test_psnr_mean", "val_ssim_mean", "test_ssim_mean"):
        assert base[column].map(math.isfinite).all(), column
    trained = board[~board["baseline"]]
    assert len(trained) == len(models)
    gain = trained["test_psnr_mean"] - float(base.loc["persistence", "test_psnr_mean"])
    assert trained["gain_vs_persistence"].tolist() == pytest.approx(gain.tolist())
    assert base.loc["persistence", "gain_vs_persistence"] == 0.0
    steps = [c for c in trials if c.startswith("test_psnr_step_")]
    assert sorted(steps) == ["test_psnr_step_1", "test_psnr_step_2", "test_psnr_step_3"]
    assert trials[steps].notna().all().all()
    assert step_means(trials).shape == (len(models), 3)


@pytest.mark.parametrize("layout, models, extra", [
    # Real sweeps: a ConvLSTM one takes minutes on 2 cores, the stacked one ~25 s; on demand.
    pytest.param("sequence", ["lstm_shallow"], "", marks=pytest.mark.slow),
    pytest.param("channels", ["testnet"], ", layout: channels, stack: 2",
                 marks=pytest.mark.slow),
])
def test_next_frame_sweep_has_baselines_and_rollout(tmp_path, capsys, layout, models, extra):
    board, trials = run_next_frame_sweep(tmp_path, f"nf_{layout}", models, 16, extra)
    check_board(board, trials, models)
    # `zoobench leaderboard` re-ranks the trials and shows the stored baseline rows too.
    capsys.readouterr()
    assert run_cli("leaderboard", "--results", str(tmp_path / "results"), "--format",
                   "csv") == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert set(printed["model"]) == {*models, "persistence", "mean_frame"}
    shown = printed.set_index("model")["gain_vs_persistence"]
    assert shown[models[0]] == pytest.approx(
        float(board.set_index("model").loc[models[0], "gain_vs_persistence"]))


@pytest.mark.slow
@pytest.mark.parametrize("layout, models, extra", [
    ("sequence", ["lstm_unet", "lstm_shallow", "lstm_full", "lstm_next_frame"], ""),
    ("channels", ["testnet", "unet_shallow", "segnet_shallow"], ", layout: channels, stack: 2"),
])
def test_every_network_sweeps_next_frames(tmp_path, layout, models, extra):
    board, trials = run_next_frame_sweep(tmp_path, f"nf_all_{layout}", models, 32, extra)
    check_board(board, trials, models)
