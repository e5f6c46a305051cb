"""A results folder is data: the report reads no file outside it, whatever its tables say.

Hostile tables name an absolute path, a ``../`` escape, a symlink out of the folder and a
``.png`` that is not a PNG; the report must hold no byte of any file outside the folder
(raw or base64), and say once per row, on stderr, what it skipped.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.common.paths import (
    PNG_SIGNATURE,
    MissingFileError,
    OutsideResultsError,
    contained_file,
    read_contained,
    read_png,
)
from bench.report import build_report
from tests.test_leaderboard import MODELS, make_results

ROOT = Path(__file__).resolve().parents[1]
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
SECRET_TEXT = b"zoobench-secret-7f3a9c: the contents of a private file\n" * 40


def _png(path: Path, seed: int) -> bytes:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (24, 72, 3), dtype=np.uint8)).save(path)
    return path.read_bytes()


@pytest.fixture()
def world(tmp_path):
    """A results folder ``results/`` of sweep ``syn`` and, beside it, ``outside/`` holding a
    text secret and a real PNG (only containment, not the signature, keeps that one out)."""
    results = tmp_path / "results"
    make_results("syn", root=results)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET_TEXT)
    secret_png = _png(outside / "secret.png", seed=99)
    (results / "predictions").mkdir(exist_ok=True)
    (results / "predictions" / "link.png").symlink_to(outside / "secret.png")
    (results / "predictions" / "link_dir").symlink_to(outside, target_is_directory=True)
    (results / "predictions" / "fake.png").write_bytes(b"not a picture: " + SECRET_TEXT[:60])
    return results, outside, {"secret.txt": SECRET_TEXT, "secret.png": secret_png}


def _set_pictures(results: Path, by_model: dict[str, str]) -> None:
    """Every trial of each model in ``by_model`` names that path in ``predictions_png``."""
    part = results / "trials.parquet" / "sweep=syn" / "part-0.parquet"
    trials = pd.read_parquet(part)
    for model, value in by_model.items():
        trials.loc[trials["model"] == model, "predictions_png"] = value
    trials.to_parquet(part)


def _hostile(outside: Path) -> dict[str, str]:
    return {
        "absolute": str(outside / "secret.png"),
        "absolute_text": str(outside / "secret.txt"),
        "dotdot": "../outside/secret.png",
        "dotdot_inside_first": "predictions/../../outside/secret.txt",
        "symlink": "predictions/link.png",
        "symlinked_folder": "predictions/link_dir/secret.png",
        "not_png": "predictions/fake.png",
        "windows_drive": "C:\\Windows\\win.ini",
    }


def _assert_nothing_outside(html: str, secrets: dict[str, bytes]) -> None:
    images = [base64.b64decode(m) for m in IMG.findall(html)]
    page = html.encode()
    for name, data in secrets.items():
        assert data not in images, f"{name} inlined"
        assert base64.b64encode(data) not in page, f"{name} in the page as base64"
        # A piece from the middle (past the header every PNG of this size shares), at an
        # offset a multiple of 3: as a base64 data URI would hold it.
        middle = len(data) // 2 // 3 * 3
        assert base64.b64encode(data[middle:middle + 48]) not in page, f"{name} partly in"
        assert data[middle:middle + 48] not in page
    assert b"zoobench-secret-7f3a9c" not in page
    assert all(image.startswith(PNG_SIGNATURE) for image in images)


# Each report gives every model a different hostile path: three reports cover the eight.
GROUPS = [("absolute", "dotdot", "symlink"), ("not_png", "absolute_text", "symlinked_folder"),
          ("dotdot_inside_first", "windows_drive")]


@pytest.mark.parametrize("kinds", GROUPS, ids=["-".join(g) for g in GROUPS])
def test_hostile_paths_read_nothing_outside_and_warn_once_per_row(world, kinds, capsys):
    results, outside, secrets = world
    values = {model: _hostile(outside)[kind] for model, kind in zip(MODELS, kinds, strict=False)}
    _set_pictures(results, values)
    html = build_report(results, sweep="syn", progress=None).read_text()
    _assert_nothing_outside(html, secrets)
    # A model left with its own picture still shows it; each hostile one is named in the note.
    predictions = html.split('<section id="predictions">')[1].split("</section>")[0]
    assert len(IMG.findall(predictions)) == len(MODELS) - len(kinds)
    assert predictions.count("predictions_png skipped") == len(kinds)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == len(kinds), warnings  # one line per row skipped
    trials = pd.read_parquet(results / "trials.parquet")
    for model, value in values.items():
        [line] = [w for w in warnings if repr(value) in w]
        trial_id = re.search(r"of trial (\S+) skipped", line).group(1)
        assert trials.loc[trials["trial_id"] == trial_id, "model"].item() == model


def test_the_cli_report_of_hostile_tables(world):
    results, outside, secrets = world
    hostile = _hostile(outside)
    _set_pictures(results, {MODELS[0]: hostile["absolute_text"]})
    out = results / "r.html"
    done = subprocess.run([sys.executable, "-m", "bench", "report", "--results", str(results),
                           "--sweep", "syn", "--out", str(out)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=300)
    assert done.returncode == 0, done.stderr
    _assert_nothing_outside(out.read_text(), secrets)
    lines = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(lines) == 1 and "absolute path" in lines[0]


def test_containment_rules(tmp_path):
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    png = _png(root / "a" / "p.png", seed=1)
    (tmp_path / "out.png").write_bytes(png)
    (root / "a" / "loop").symlink_to(root / "a" / "loop")
    (root / "a" / "inner.png").symlink_to(root / "a" / "p.png")  # a link inside: fine
    assert read_png(root, "a/p.png") == png
    assert read_png(root, "a/inner.png") == png
    assert contained_file(root, "a/p.png") == (root / "a" / "p.png").resolve()
    reasons = {
        "/etc/hostname": "absolute path",
        str(tmp_path / "out.png"): "absolute path",
        "\\\\server\\share\\x.png": "absolute path",
        "../out.png": "'..'",
        "a/../../out.png": "'..'",
        "a": "not a regular file",
        "a/loop": "cannot resolve",
        "": "empty",
    }
    for name, reason in reasons.items():
        with pytest.raises(OutsideResultsError, match=re.escape(reason)):
            read_contained(root, name)
    with pytest.raises(MissingFileError):
        read_png(root, "a/none.png")
    (root / "a" / "t.png").write_bytes(b"GIF89a....")
    with pytest.raises(OutsideResultsError, match="not a PNG"):
        read_png(root, "a/t.png")


def test_report_of_the_reference_imports_no_tensorflow(tmp_path):
    """``zoobench report`` draws tables: building the reference's report in a fresh
    interpreter leaves TensorFlow (and zoo, which imports it) unimported."""
    reference = tmp_path / "reference"
    shutil.copytree(ROOT / "results" / "reference", reference,
                    ignore=shutil.ignore_patterns("mlflow.db", "report.html"))
    code = (
        "import sys\n"
        "from bench.cli import main\n"
        f"rc = main(['report', '--results', {str(reference)!r}, '--out', "
        f"{str(tmp_path / 'r.html')!r}])\n"
        "assert rc == 0, rc\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'zoo', "
        "'keras')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "r.html").read_text().count("data:image/png;base64,") >= 5


def _saved_outbox(results: Path, uri: str) -> tuple[str, str]:
    """A real SQLite MLflow store under ``results`` and one saved outbox of sweep ``s``."""
    from mlflow.tracking import MlflowClient

    from bench.tracking import outbox
    from bench.tracking import runs as tracking

    track = tracking.start_sweep(uri, results, "s", "epochs: 1\n", {})
    run_id = MlflowClient(uri).create_run(track.experiment_id).info.run_id
    box = outbox.Outbox(uri, run_id)
    box.add_metrics({"val_loss": 0.5}, 1)
    outbox.write(results, "s", "t1", box)
    return run_id, track.experiment_id


def test_sync_mlflow_reads_no_outbox_outside_the_folder(tmp_path, capsys, monkeypatch):
    from mlflow.tracking import MlflowClient

    from bench.cli import main
    from bench.tracking import outbox

    results = tmp_path / "results"
    results.mkdir()
    uri = f"sqlite:///{results / 'mlflow.db'}"
    run_id, _ = _saved_outbox(results, uri)
    # An outbox that is a link to a file elsewhere (it parses as an outbox: were it read,
    # its metric would be sent).
    elsewhere = tmp_path / "elsewhere.json"
    stolen = outbox.Outbox(uri, run_id)
    stolen.add_metrics({"stolen": 42.0}, 7)
    elsewhere.write_text(json.dumps(stolen.to_dict()))
    (outbox.folder(results, "s") / "t2.json").symlink_to(elsewhere)
    capsys.readouterr()
    assert main(["sync-mlflow", "--sweep", "s", "--results", str(results)]) == 0
    out = capsys.readouterr()
    [warning] = [line for line in out.err.splitlines() if "warning" in line]
    assert "t2.json skipped" in warning and "outside the results folder" in warning
    assert "sent 1 runs (1 epochs of metrics)" in out.out
    client = MlflowClient(uri)
    assert [m.value for m in client.get_metric_history(run_id, "val_loss")] == [0.5]
    assert client.get_metric_history(run_id, "stolen") == []
    assert elsewhere.exists()  # and the outside file is neither sent nor deleted

    # A sweep name that is a path is refused (exit 2), before anything is read.
    assert main(["sync-mlflow", "--sweep", "../elsewhere", "--results", str(results)]) == 2
    assert "--sweep" in capsys.readouterr().err


def test_sync_mlflow_asks_where_credentials_go(tmp_path, capsys, monkeypatch):
    from bench.cli import main
    from bench.tracking import outbox

    results = tmp_path / "results"
    results.mkdir()
    box = outbox.Outbox("http://198.51.100.7:5000", "0123abcd")  # TEST-NET-2: no one
    box.add_metrics({"val_loss": 0.5}, 1)
    outbox.write(results, "s", "t1", box)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-on-any-command-line")
    assert main(["sync-mlflow", "--sweep", "s", "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert "http://198.51.100.7:5000" in err and "--tracking-uri" in err
    assert "not-on-any-command-line" not in err
    assert (outbox.folder(results, "s") / "t1.json").exists()  # nothing lost
