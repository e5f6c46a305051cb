"""Shared fixtures: one small real sweep (local Ray, MLflow sqlite, Parquet) per test session.

``small_sweep`` runs ``zoobench sweep`` in this process, so later sweeps of the session
reuse its Ray instance; other test files (leaderboard, report) read its results.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The session's own cache (bench.tracking.store_template keeps the MLflow store template
# there), shared by its sweeps and their processes, never the user's ~/.cache.
if "ZOOBENCH_CACHE_DIR" not in os.environ:
    os.environ["ZOOBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="zoobench-test-cache-")
    atexit.register(shutil.rmtree, os.environ["ZOOBENCH_CACHE_DIR"], ignore_errors=True)

SMALL_SPEC = """\
name: small
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 16, val: 8}
models: [testnet]
losses: [categorical_crossentropy, dice]
seeds: [0]
epochs: 2
params:
  batch_size: 8
  lr: 1.0e-3
metric: val_mean_iou
mode: max
resources: {cpu: 1, gpu: 0}
"""


@dataclass(frozen=True)
class SmallSweep:
    """A finished sweep: ``testnet x {categorical_crossentropy, dice}``, seed 0, 2 epochs.

    Attributes:
        results: the results folder (``trials.parquet``, ``history.parquet``, ...).
        tracking_uri: its MLflow store (``sqlite:///<results>/mlflow.db``).
        name: the sweep's name (``small``).
        spec_path: the spec file it ran.
        exit_code: what ``zoobench sweep`` returned (0).
    """

    results: Path
    tracking_uri: str
    name: str
    spec_path: Path
    exit_code: int


def headless_chromium(url: str, profile: Path, *, width: int = 1400, height: int = 900,
                      screenshot: Path | None = None, timeout: float = 120) -> str:
    """Open ``url`` in headless Chromium at a ``width`` x ``height`` window; the DOM once
    the page has loaded and its scripts ran (``--dump-dom``), or, with ``screenshot``, write
    a PNG of the window there instead and return "".

    ``profile``: a fresh folder for the browser's profile. Skips the test where there is no
    Chromium.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed: cannot render the page")
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", "--virtual-time-budget=10000",
            "--run-all-compositor-stages-before-draw"]
    args += [f"--screenshot={screenshot}"] if screenshot is not None else ["--dump-dom"]
    done = subprocess.run([*args, url], check=True, capture_output=True, text=True,
                          timeout=timeout)
    return "" if screenshot is not None else done.stdout


def run_cli(*argv: str) -> int:
    """``zoobench *argv`` in this process; its exit status."""
    from bench.cli import main

    return main(list(argv))


def kill_sweep_when(argv: list[str], ready: Callable[[], Any], *, waiting_for: str,
                    within_s: float, env: dict[str, str] | None = None,
                    poll_s: float = 0.5) -> Any:
    """Run ``zoobench *argv`` in a process group of its own and SIGKILL the whole group (the
    driver, its local Ray and the trials: as a crash of the machine would) as soon as
    ``ready()`` returns something true; that value. Fails when the sweep ends first or
    nothing is ready within ``within_s`` (``waiting_for`` says what was awaited)."""
    process = subprocess.Popen([sys.executable, "-m", "bench", *argv], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + within_s
        while not (value := ready()):
            assert process.poll() is None, f"the sweep ended before {waiting_for}"
            assert time.monotonic() < deadline, f"no {waiting_for} within {within_s:g} s"
            time.sleep(poll_s)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return value


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory: pytest.TempPathFactory) -> SmallSweep:
    """Run the small sweep once per session and hand its folders to the tests."""
    root = tmp_path_factory.mktemp("small_sweep")
    spec_path = root / "small.yaml"
    spec_path.write_text(SMALL_SPEC)
    results = root / "results"
    code = run_cli("sweep", str(spec_path), "--results", str(results))
    assert code == 0, "the small sweep failed; see the captured output"
    return SmallSweep(results, f"sqlite:///{results.resolve() / 'mlflow.db'}", "small",
                      spec_path, code)


def _mlflow_uris() -> tuple[object, object] | None:
    """MLflow's process-wide tracking and registry URIs as set (None: never set, so the
    environment or the default decides); None when MLflow is not imported."""
    if "mlflow" not in sys.modules:
        return None
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    return getattr(tracking, "_tracking_uri", None), getattr(registry, "_registry_uri", None)


@pytest.fixture(autouse=True)
def _restore_mlflow_uris():
    """Put back the MLflow URIs a test (or bench code it ran in-process) set with
    ``mlflow.set_tracking_uri``: a later test must not log into an earlier test's store,
    whatever order the tests run in (``pytest -p randomly``)."""
    before = _mlflow_uris() or (None, None)
    yield
    if _mlflow_uris() is None:
        return
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    if hasattr(tracking, "_tracking_uri"):  # private: MLflow keeps no public reset
        tracking._tracking_uri = before[0]
    if hasattr(registry, "_registry_uri"):
        registry._registry_uri = before[1]


@pytest.fixture(scope="session", autouse=True)
def _stop_ray_at_end():
    """Shut down the Ray instance a sweep started in this process, once the session ends."""
    yield
    import sys

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
