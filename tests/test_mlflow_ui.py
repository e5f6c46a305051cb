"""MLflow as its users expect (issue 14 item 2): the experiment opens on its runs in MLflow 3's
UI, runs name their source, and ``register_best`` registers the sweep's best model.

The UI test starts a real ``mlflow server`` on loopback and loads the experiment page in
headless Chromium; it ends only the server process group it started.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from bench.common.errors import UsageError
from bench.spec.model import parse_spec
from bench.tracking import runs as tracking
from bench.tracking.model_registry import register_best
from bench.tracking.ui_links import experiment_url, ui_lines

SPEC = """\
name: t
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 8, val: 4}
models: [testnet]
losses: [dice]
seeds: [0]
epochs: 1
"""


def _store(tmp_path: Path) -> tuple[tracking.Tracking, list[str]]:
    """A sweep's parent run and two trial runs, made as a sweep makes them (no Ray)."""
    results = tmp_path / "results"
    results.mkdir()
    track = tracking.start_sweep(tracking.default_tracking_uri(results), results, "uisweep",
                                 SPEC, {"epochs": 1})
    run_ids = []
    for index, name in enumerate(("testnet-dice-s0", "testnet-focal-s0")):
        run = tracking.TrialRun(track, name, f"t_{index}", "uisweep", {"lr": 0.001}, None)
        run.log_epoch({"val_mean_iou": 0.5 + index / 10}, 1)
        run_ids.append(run.run_id)
        run.end("FINISHED")
    return track, run_ids


def test_experiment_kind_and_source_tags(tmp_path):
    track, run_ids = _store(tmp_path)
    client = MlflowClient(track.uri)
    experiment = client.get_experiment(track.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    for run_id in (track.parent_run_id, *run_ids):
        tags = client.get_run(run_id).data.tags
        assert tags["mlflow.source.name"] == "zoobench sweep uisweep"
        assert tags["mlflow.source.type"] == "JOB"


def test_experiment_of_an_older_zoobench_gets_the_kind(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment(tracking.EXPERIMENT)
    track = tracking.start_sweep(uri, tmp_path, "old", SPEC, {})
    tags = MlflowClient(uri).get_experiment(track.experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"


def test_register_best_spec_key():
    assert parse_spec(SPEC).register_best is None
    assert parse_spec(SPEC + "register_best: shapes-seg\n").register_best == "shapes-seg"
    with pytest.raises(UsageError, match="register_best"):
        parse_spec(SPEC + "register_best: 'a b/c'\n")


def test_register_best_registers_the_rank_1_rows_best_trial(tmp_path):
    import keras
    import mlflow
    import numpy as np

    from bench.run.trial.final import log_keras_model

    track, run_ids = _store(tmp_path)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    for run_id in run_ids:
        with mlflow.start_run(run_id=run_id):
            log_keras_model(model)
    board = pd.DataFrame({"rank": [2, 1], "best_mlflow_run_id": run_ids})
    assert register_best(track, board, "shapes-seg", "uisweep") == 1
    # Again with the same best run (a rerun of a finished sweep): no new version.
    assert register_best(track, board, "shapes-seg", "uisweep") == 1
    client = MlflowClient(track.uri)
    (version,) = client.search_model_versions("name = 'shapes-seg'")
    assert version.run_id == run_ids[1]
    assert version.tags["zoobench.sweep"] == "uisweep"
    loaded = mlflow.pyfunc.load_model("models:/shapes-seg/1")
    assert loaded.predict(np.zeros((3, 4), np.float32)).shape == (3, 2)
    # A leaderboard whose trials all failed registers nothing.
    assert register_best(track, board.assign(best_mlflow_run_id=None), "x", "uisweep") is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture()
def mlflow_server(tmp_path):
    """``mlflow server`` on a free loopback port over the test store; yields (url, track, runs)."""
    track, run_ids = _store(tmp_path)
    port = _free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115  (closed after the server ends)
    server = subprocess.Popen(
        ["mlflow", "server", "--backend-store-uri", track.uri, "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # a loaded 2-core machine starts it slowly
        while not _healthy(f"{url}/health"):
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start in 240 s"
            time.sleep(1)
        yield url, track, run_ids
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # only the group this fixture started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def chromium_dom(url: str, tmp_path: Path, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran, from headless Chromium (and a screenshot)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "headless Chromium is needed (apt-get install chromium)"
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,900",
            "--virtual-time-budget=30000", "--run-all-compositor-stages-before-draw"]
    if screenshot is not None:
        subprocess.run([*args, f"--screenshot={screenshot}", url], check=True,
                       capture_output=True, timeout=300)
    done = subprocess.run([*args, "--dump-dom", url], check=True, capture_output=True,
                          text=True, timeout=300)
    return done.stdout


def _text(dom: str) -> str:
    """The page's visible words: tags, scripts and styles dropped."""
    dom = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


@pytest.mark.slow  # an MLflow server and Chromium: ~35 s (the link's text: test_ui_lines_name_...)
def test_ui_opens_the_experiment_on_its_runs(mlflow_server, tmp_path):
    url, track, _ = mlflow_server
    shot = tmp_path / "experiment.png"
    # The link zoobench prints after a sweep: the runs table, with the sweep's parent run.
    link = experiment_url(track, url)
    assert link.endswith(f"/#/experiments/{track.experiment_id}?workflowType=machine_learning")
    text = _text(chromium_dom(link, tmp_path, shot))
    assert "Run Name" in text and "uisweep" in text, text[:2000]
    assert "Source" in text
    assert "No data available" not in text
    assert shot.stat().st_size > 10_000


def test_ui_lines_name_the_command_and_the_link(tmp_path):
    track = tracking.Tracking("sqlite:////r/mlflow.db", "3", "p")
    assert ui_lines(track) == [
        "MLflow UI: mlflow ui --backend-store-uri sqlite:////r/mlflow.db",
        "  then open http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning"]
    server = tracking.Tracking("http://mlflow.internal:5000", "7", "p")
    assert ui_lines(server) == [
        "  then open http://mlflow.internal:5000/#/experiments/7?workflowType=machine_learning"]
