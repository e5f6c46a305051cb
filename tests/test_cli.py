"""``zoobench`` exit codes and listings; bad input exits 2 with one line and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import run_cli


def test_models_listing_formats(capsys):
    assert run_cli("models", "--format", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    names = [row["name"] for row in rows]
    assert {"testnet", "unet", "lstm_unet", "ladder"} <= set(names)
    testnet = rows[names.index("testnet")]
    assert testnet["kind"] == "image"
    assert testnet["options"] == {"base_filters": 16, "batch_norm": True}
    assert run_cli("losses") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["name", "params", "summary"]  # parameters with defaults
    assert any(line.startswith("focal ") for line in out)
    assert run_cli("datasets", "--format", "csv") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "name,kind,options,summary"
    assert any(line.startswith("shapes,image,") for line in out)


def test_print_spec(capsys):
    assert run_cli("sweep", "--print-spec") == 0
    assert "name: smoke" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["sweep", "missing.yaml"], "zoobench: error: missing.yaml: no such file"),
    (["sweep", "--colour"], "zoobench: error: unrecognized arguments: --colour"),
    (["frobnicate"], "zoobench: error: argument COMMAND: invalid choice: 'frobnicate'"),
    (["models", "--format", "xml"], "zoobench: error: argument --format: invalid choice"),
])
def test_bad_flags_and_files_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_spec_exits_2_in_a_real_process(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("dataset: shapes\nmodels: [testnet]\nlosses: [dice]\nepochs: -1\n")
    done = subprocess.run([sys.executable, "-m", "bench", "sweep", str(spec), "--results",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"zoobench: error: {spec}: epochs: must be at least 1, got -1")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()  # nothing started


@pytest.mark.parametrize("flag", ["--results", "--storage"])
def test_a_file_where_a_folder_belongs_exits_2(flag, tmp_path, capsys):
    afile = tmp_path / "taken.txt"
    afile.write_text("not a folder")
    argv = ["sweep", "--results", str(tmp_path / "results"), flag, str(afile)]
    assert run_cli(*argv) == 2
    assert capsys.readouterr().err == f"zoobench: error: {flag}: {afile} is a file, not a folder\n"
    assert afile.read_text() == "not a folder"


# ---- options no other test runs: sweep --name and --verbose, leaderboard --mode, report
# without --sweep
NAMED_SPEC = """\
name: given
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 8, val: 8}
models: [testnet]
losses: [dice]
seeds: [0]
epochs: 1
params: {batch_size: 8, lr: 1.0e-3}
resources: {cpu: 1, gpu: 0}
"""


def test_sweep_name_renames_the_sweep_and_verbose_shows_tunes_output(tmp_path):
    """``--name`` records the sweep under that name, not the spec's; ``--verbose`` lets Ray
    Tune print its status table on the console and the trial workers' own lines reach it
    (without it the table goes to the log and the workers' lines stay in Ray's). In its own
    process: the Ray it starts logs to the console, which no other test's Ray should."""
    import pandas as pd

    spec = tmp_path / "given.yaml"
    spec.write_text(NAMED_SPEC)
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "sweep", str(spec), "--results", str(results),
         "--name", "renamed", "--verbose"], capture_output=True, text=True, timeout=600)
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-3000:]
    trials = pd.read_parquet(results / "trials.parquet")
    assert trials["sweep"].astype(str).tolist() == ["renamed"]
    assert sorted(p.name for p in (results / "trials.parquet").iterdir()) == ["sweep=renamed"]
    assert (results / "ray" / "renamed").is_dir() and not (results / "ray" / "given").exists()
    assert "Trial status" in console, console[-3000:]
    assert "(train_trial pid=" in console, console[-3000:]  # a worker's line, forwarded


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory):
    """A results folder with the synthetic sweeps ``syn`` and ``older``
    (``tests.test_leaderboard.make_results``); ``older`` ended an hour after ``syn``, so the
    latest is not the alphabetical last."""
    import pandas as pd

    from tests.test_leaderboard import make_results

    root = tmp_path_factory.mktemp("two_sweeps")
    make_results("syn", root=root)
    make_results("older", root=root, shift=-0.1, seed=7)
    part = root / "trials.parquet" / "sweep=older" / "part-0.parquet"
    older = pd.read_parquet(part)
    older["ended_at"] = older["ended_at"] + pd.Timedelta(hours=1)
    older.to_parquet(part)
    return root


def test_leaderboard_mode_min_ranks_the_lowest_score_first(two_sweeps, capsys):
    """``--mode min`` turns ``--metric``'s direction round: the lowest mean ranks 1. Rows
    without a failed trial score their finished trials' mean under either mode."""
    import pandas as pd

    trials = pd.read_parquet(two_sweeps / "trials.parquet")
    mine = trials[trials["sweep"].astype(str) == "syn"]
    boards = {}
    for mode in ("max", "min"):
        assert run_cli("leaderboard", "--results", str(two_sweeps), "--sweep", "syn",
                       "--metric", "val_mean_iou", "--mode", mode, "--format", "json") == 0
        boards[mode] = pd.DataFrame(json.loads(capsys.readouterr().out))
    for mode, board in boards.items():
        assert set(board["mode"]) == {mode} and board["rank"].tolist() == [1, 2, 3, 4, 5, 6]
        scores = board["score"].tolist()
        assert scores == sorted(scores, reverse=(mode == "max")), (mode, scores)
        for row in board[board["failed"] == 0].itertuples():
            cell = mine[(mine["model"] == row.model) & (mine["loss"] == row.loss)]
            assert row.score == pytest.approx(cell["val_mean_iou"].mean())
    # Among the rows without failures, the order under min is the order under max reversed.
    clean = [(r.model, r.loss) for r in boards["max"].itertuples() if r.failed == 0]
    assert [(r.model, r.loss) for r in boards["min"].itertuples() if r.failed == 0] == \
        clean[::-1]


def test_report_without_sweep_reports_the_latest_and_says_so(two_sweeps, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert run_cli("report", "--results", str(two_sweeps), "--out", str(out)) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert captured.err.splitlines()[0] == (  # then the sections' progress lines
        "report: several sweeps (older, syn); reporting on the latest, 'older' (choose with "
        "--sweep)")
    html = out.read_text(encoding="utf-8")
    assert "zoobench report: older" in html and "zoobench report: syn" not in html
