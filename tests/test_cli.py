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
