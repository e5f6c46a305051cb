"""The cluster path, proven on one machine: a sweep across a two-node Ray cluster logging to a
separate MLflow tracking server, driven by ``zoobench sweep --address --tracking-uri --storage``
exactly as on a real cluster.

The fixture starts, on loopback:

- a Ray head and a second Ray node (``ray start --block``, one CPU each, each with its own
  temp dir and ports, token authentication on with one shared token);
- ``mlflow server`` with a SQLite backend and ``--serve-artifacts``, so trials upload their
  models over HTTP, as workers on other machines do.

One CPU per node and one CPU per trial means two trials at a time, one on each node, so the
four trials must use both. Every process started here carries a marker in its environment;
clean-up stops the nodes gracefully, then kills whatever still carries the marker (Ray's
workers included) by pid. ``ray stop`` is never used: it would stop every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

# Minutes, not seconds: two Ray nodes, a tracking server and four trials, each in a fresh
# process importing TensorFlow. Run with `pytest -m slow tests/test_cluster.py`.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="finds its processes in /proc"),
]

REPO = Path(__file__).resolve().parent.parent
MARKER = "ZOOBENCH_TEST_CLUSTER"
RAY = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` CLI of this interpreter
EPOCHS = 2
SPEC = textwrap.dedent(f"""\
    name: cluster
    dataset: {{name: shapes, height: 16, width: 16, channels: 1, classes: 2, train: 16, val: 8}}
    models: [testnet]
    losses: [categorical_crossentropy, dice]
    seeds: [0, 1]
    epochs: {EPOCHS}
    params: {{batch_size: 8, lr: 1.0e-2}}
    scheduler: fifo
    metric: val_mean_iou
    mode: max
    resources: {{cpu: 1, gpu: 0}}
    """)
N_TRIALS = 4  # testnet x 2 losses x 2 seeds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(what: str, ready: Callable[[], Any], timeout: float, interval: float = 0.5,
          logs: Sequence[Path] = ()) -> Any:
    """Poll ``ready()`` until it returns a truthy value (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(interval)
    tails = "".join(f"\n--- {log}:\n{_tail(log)}" for log in logs)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s{tails}")


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as error:
        return f"({error})"


def _pids_with(marker: str) -> list[int]:
    """Live processes whose environment holds ``MARKER=marker``: everything this test started,
    down to Ray's workers, which re-title themselves (``ray::IDLE``) but keep the environment."""
    needle = f"{MARKER}={marker}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:  # gone meanwhile, or a zombie
            continue
    return pids


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass
class Services:
    """What the fixture started: the Ray cluster, the MLflow server, and how to reach them."""

    root: Path
    env: dict[str, str]
    marker: str
    ray_address: str = ""
    node_ids: list[str] = field(default_factory=list)
    tracking_uri: str = ""
    artifacts: Path = Path()
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        """Start ``args`` in its own session (its own process group), output to ROOT/NAME.log."""
        with open(self.root / f"{name}.log", "wb") as log:
            process = subprocess.Popen(args, env=self.env, cwd=self.root, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def stop(self) -> None:
        """Stop everything started here; never raises, returns within about a minute."""
        # The second node before the head, while the head's GCS can still acknowledge its drain.
        for name in ("sweep", "mlflow", "ray-node", "ray-head"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=15)
        for pid in _pids_with(self.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        with contextlib.suppress(TimeoutError):  # what is left fails test_nothing_is_left_running
            _wait("clean-up", lambda: not _pids_with(self.marker), timeout=20)


def _ray_node_args(env: dict[str, str]) -> list[str]:
    """Flags every node needs so that two nodes and other users' Ray share one machine: every
    port picked free (Ray's defaults, e.g. the agent's 52365, would collide)."""
    return [
        "--num-cpus=1", "--num-gpus=0", "--object-store-memory=80000000",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--dashboard-agent-grpc-port={_free_port()}",
        f"--runtime-env-agent-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
        "--disable-usage-stats", "--block",
    ]


def _alive_node_ids(services: Services) -> list[str]:
    """Ids of the cluster's alive nodes, asked of Ray by a driver of its own, once both are up."""
    script = textwrap.dedent(f"""\
        import json, time, ray
        ray.init(address={services.ray_address!r}, logging_level="ERROR")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
            if len(alive) >= 2:
                break
            time.sleep(0.5)
        print(json.dumps(alive))
        """)
    result = subprocess.run([sys.executable, "-c", script], env=services.env, cwd=services.root,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, f"ray.nodes() failed:\n{result.stderr[-3000:]}"
    alive = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(alive) == 2, (f"cluster has nodes {alive}\n"
                             f"{_tail(services.root / 'ray-node.log')}")
    return alive


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    # A short root of our own: Ray's unix sockets live under --temp-dir and socket paths are
    # capped at 107 bytes, which pytest's deeper tmp_path can exceed.
    root = Path(tempfile.mkdtemp(prefix="zb-cluster-", dir="/tmp"))
    marker = uuid.uuid4().hex
    env = {
        **os.environ,
        MARKER: marker,
        # Ray 2.60 turns token auth on for clusters it starts: every node and driver must agree
        # on the mode and the token. RAY_AUTH_TOKEN beats ~/.ray/auth_token, which stays as is.
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": uuid.uuid4().hex,
        "RAY_USAGE_STATS_ENABLED": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    env.pop("RAY_ADDRESS", None)
    services = Services(root=root, env=env, marker=marker)
    try:
        mlflow_port, gcs_port = _free_port(), _free_port()
        services.artifacts = root / "artifacts"
        services.start("mlflow", [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
            "--port", str(mlflow_port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--serve-artifacts", "--artifacts-destination", str(services.artifacts),
        ])
        services.start("ray-head", [
            *RAY, "start", "--head", f"--port={gcs_port}", f"--temp-dir={root / 'head'}",
            "--include-dashboard=false", f"--dashboard-port={_free_port()}",
            f"--ray-client-server-port={_free_port()}", *_ray_node_args(env),
        ])
        _wait("Ray head", lambda: _port_open(gcs_port), timeout=180,
              logs=[root / "ray-head.log"])
        services.ray_address = f"127.0.0.1:{gcs_port}"
        services.start("ray-node", [
            *RAY, "start", f"--address={services.ray_address}", f"--temp-dir={root / 'node'}",
            *_ray_node_args(env),
        ])
        services.node_ids = _alive_node_ids(services)
        services.tracking_uri = f"http://127.0.0.1:{mlflow_port}"
        _wait("MLflow server", lambda: _http_ok(f"{services.tracking_uri}/health"), timeout=180,
              logs=[root / "mlflow.log"])
        yield services
    finally:
        services.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class SweepRun:
    returncode: int
    output: str
    results: Path
    storage: Path
    seconds: float


@pytest.fixture(scope="module")
def sweep(services: Services) -> SweepRun:
    """``zoobench sweep`` on the cluster, run once for every check below."""
    spec = services.root / "cluster.yaml"
    spec.write_text(SPEC)
    results, storage = services.root / "results", services.root / "storage"
    args = [sys.executable, "-m", "bench", "sweep", str(spec), "--results", str(results),
            "--address", services.ray_address, "--tracking-uri", services.tracking_uri,
            "--storage", str(storage)]
    start = time.monotonic()
    process = services.start("sweep", args)
    try:
        returncode = process.wait(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        returncode = -1
    output = _tail(services.root / "sweep.log", 6000)
    return SweepRun(returncode, output, results, storage, time.monotonic() - start)


@pytest.fixture(scope="module")
def trials(sweep: SweepRun) -> pd.DataFrame:
    assert sweep.returncode == 0, f"zoobench sweep exited {sweep.returncode}:\n{sweep.output}"
    return pd.read_parquet(sweep.results / "trials.parquet")


def test_the_cluster_has_two_nodes_and_a_tracking_server(services: Services) -> None:
    assert len(set(services.node_ids)) == 2
    assert all(len(node_id) == 56 for node_id in services.node_ids)  # Ray's hex node ids
    assert _http_ok(f"{services.tracking_uri}/health")


def test_every_trial_finished(trials: pd.DataFrame, sweep: SweepRun) -> None:
    print(f"sweep of {N_TRIALS} trials on 2 nodes: {sweep.seconds:.1f} s")
    assert len(trials) == N_TRIALS
    assert trials["trial_id"].is_unique
    assert list(trials["status"]) == ["TERMINATED"] * N_TRIALS, trials[["status", "error"]]
    assert (trials["epochs_done"] == EPOCHS).all()
    assert set(trials["model"]) == {"testnet"}
    assert set(trials["loss"]) == {"categorical_crossentropy", "dice"}
    assert sorted(trials["seed"]) == [0, 0, 1, 1]


def test_trials_ran_on_both_nodes(trials: pd.DataFrame, services: Services) -> None:
    assert set(trials["node_id"]) == set(services.node_ids)
    # One machine: both nodes share its host name, so only node_id tells them apart.
    assert trials["node"].notna().all()


def test_metrics_per_epoch_reached_the_server(trials: pd.DataFrame, services: Services) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=services.tracking_uri)
    for row in trials.itertuples():
        run = client.get_run(row.mlflow_run_id)
        assert run.info.status == "FINISHED", row.trial_id
        assert run.data.params, f"{row.trial_id}: no params on the server"
        for metric in ("val_loss", "val_mean_iou", "val_dice_coef"):
            history = client.get_metric_history(row.mlflow_run_id, metric)
            steps = sorted(point.step for point in history)
            # Epochs 1..E, then step E + 1: the selected epoch's values (the run's final).
            assert steps == list(range(1, EPOCHS + 2)), f"{row.trial_id}: {metric} at {steps}"
        # The best epoch's value in Parquet is one of the values the server holds.
        served = [p.value for p in client.get_metric_history(row.mlflow_run_id, "val_mean_iou")]
        assert min(abs(v - row.val_mean_iou) for v in served) < 1e-6


def _artifact_paths(client, run_id: str, path: str | None = None) -> list[str]:
    paths = []
    for item in client.list_artifacts(run_id, path):
        paths.extend(_artifact_paths(client, run_id, item.path) if item.is_dir else [item.path])
    return paths


def test_models_reached_the_servers_artifact_store(trials: pd.DataFrame, services: Services,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    # Listing a run's logged MLflow Model resolves `models:/m-...` with a client of the
    # global tracking URI, not this one's (MLflow 3.17): point it at the server too, or it
    # would open (and create) ./mlflow.db.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", services.tracking_uri)
    client = MlflowClient(tracking_uri=services.tracking_uri)
    for row in trials.itertuples():
        run = client.get_run(row.mlflow_run_id)
        # Proxied by the server (mlflow-artifacts:), not a path only this machine could read.
        assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
        models = [p for p in _artifact_paths(client, row.mlflow_run_id) if p.endswith(".keras")]
        assert models, f"{row.trial_id}: no .keras model among the run's artifacts"
    # ... and the files are where the server keeps them.
    stored = list(services.artifacts.rglob("*.keras"))
    assert len(stored) >= N_TRIALS


def test_tune_state_went_to_the_given_storage(trials: pd.DataFrame, sweep: SweepRun) -> None:
    experiment = sweep.storage / "cluster"
    assert experiment.is_dir()
    assert len([p for p in experiment.iterdir() if p.is_dir()]) == N_TRIALS


PLUGIN_SPEC = textwrap.dedent("""\
    name: cluster-plugin
    plugins: [cluster_plugin_zoo]
    dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 16, val: 8,
              test: 8}
    models: [{plugin_net: {filters: 6}}]
    losses: [{plugin_loss: {scale: 0.5}}]
    seeds: [0, 1]
    epochs: 1
    params: {batch_size: 8, lr: 1.0e-3}
    scheduler: fifo
    resources: {cpu: 1, gpu: 0}
    """)


@pytest.fixture(scope="module")
def plugin_sweep(services: Services, trials: pd.DataFrame) -> SweepRun:
    """A sweep of a model and a loss from the user's own module, which only the driver can
    import: the module's folder is on the driver's PYTHONPATH, not on either node's."""
    from tests.test_plugins import PLUGIN

    folder = services.root / "user-code"
    folder.mkdir()
    (folder / "cluster_plugin_zoo.py").write_text(PLUGIN)
    spec = services.root / "cluster-plugin.yaml"
    spec.write_text(PLUGIN_SPEC)
    results = services.root / "results-plugin"
    env = {**services.env, "PYTHONPATH": os.pathsep.join([str(folder), services.env["PYTHONPATH"]])}
    args = [sys.executable, "-m", "bench", "sweep", str(spec), "--results", str(results),
            "--address", services.ray_address, "--tracking-uri", services.tracking_uri,
            "--storage", str(services.root / "storage")]
    start = time.monotonic()
    with open(services.root / "sweep-plugin.log", "wb") as log:
        done = subprocess.run(args, env=env, cwd=services.root, stdout=log,
                              stderr=subprocess.STDOUT, timeout=600)
    output = _tail(services.root / "sweep-plugin.log", 6000)
    return SweepRun(done.returncode, output, results, services.root / "storage",
                    time.monotonic() - start)


def test_a_plugin_only_the_driver_has_is_swept_on_both_nodes(plugin_sweep: SweepRun,
                                                            services: Services) -> None:
    assert plugin_sweep.returncode == 0, plugin_sweep.output
    assert "shipping plugin code to the cluster's workers" in plugin_sweep.output
    trials = pd.read_parquet(plugin_sweep.results / "trials.parquet")
    assert list(trials["status"]) == ["TERMINATED", "TERMINATED"], trials[["status", "error"]]
    assert set(trials["model"]) == {"plugin_net(filters=6)"}
    assert set(trials["loss"]) == {"plugin_loss(scale=0.5)"}
    assert trials["test_mean_iou"].between(0, 1).all()
    # Two trials at once on two one-CPU nodes: the node without the module ran one too.
    assert set(trials["node_id"]) == set(services.node_ids)


def test_nothing_is_left_running(services: Services, trials: pd.DataFrame) -> None:
    # Runs last in this module (pytest keeps file order): stop early and check the clean-up.
    services.stop()
    assert _pids_with(services.marker) == []
    assert not _port_open(int(services.ray_address.rsplit(":", 1)[1]))
