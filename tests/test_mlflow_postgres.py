"""The cluster's MLflow store, for real: PostgreSQL, ``mlflow server --app-name basic-auth``,
and a sweep whose runs land there through a user's credentials (issue 26).

A real PostgreSQL (``initdb``/``pg_ctl`` from the machine, as a non-root user) starts in a
temporary folder on a loopback port; the server runs on it with authentication on, its
admin password and every other secret in its environment only. An unauthenticated request
is refused (401); ``zoobench sweep`` runs with ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD`` and its runs, epochs and models land; no password is in a
logged param or tag. Skipped, saying why, where PostgreSQL's binaries or the driver are absent.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

SPEC = """\
name: pg
dataset: {name: shapes, height: 16, width: 16, channels: 1, classes: 2, train: 32, val: 16,
          test: 16}
models: [testnet]
losses: [dice]
seeds: [0, 1]
epochs: 1
params: {batch_size: 16, lr: 1.0e-3}
resources: {cpu: 1, gpu: 0}
"""


def _pg_bin() -> Path | None:
    """The folder of PostgreSQL's server binaries (newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, seconds: float, proc: subprocess.Popen) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {seconds} s")


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    """A PostgreSQL server on 127.0.0.1 with databases ``mlflow`` and ``mlflow_auth``; its
    role ``zoobench`` has a random password (the dict's ``password``)."""
    pg_bin = _pg_bin()
    if pg_bin is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not on this machine")
    psycopg2 = pytest.importorskip("psycopg2", reason="the PostgreSQL driver (psycopg2-binary, "
                                   "in the test extra) is not installed")
    # PostgreSQL refuses to run as root: as root, run it as `nobody`.
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: PostgreSQL refuses root")
        as_user = ["runuser", "-u", "nobody", "--"]
    base = Path(tempfile.mkdtemp(prefix="zoobench-pg-", dir="/tmp"))
    base.chmod(0o755)
    data = base / "data"
    password = secrets.token_hex(16)
    pwfile = base / "pw"
    pwfile.write_text(password)
    if as_user:
        nobody = pwd.getpwnam("nobody")
        os.chown(base, nobody.pw_uid, nobody.pw_gid)
        os.chown(pwfile, nobody.pw_uid, nobody.pw_gid)
    pwfile.chmod(0o600)
    port = _free_port()
    run = {"capture_output": True, "text": True, "timeout": 120, "cwd": base}
    done = subprocess.run([*as_user, str(pg_bin / "initdb"), "-D", str(data), "-U", "zoobench",
                           "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"], **run)
    assert done.returncode == 0, done.stderr
    pwfile.unlink()
    log = base / "postgres.log"
    done = subprocess.run([*as_user, str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(log),
                           "-w", "-o", f"-p {port} -k {base} -h 127.0.0.1", "start"], **run)
    assert done.returncode == 0, done.stderr + (log.read_text() if log.exists() else "")
    try:
        connection = psycopg2.connect(host="127.0.0.1", port=port, user="zoobench",
                                      password=password, dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE mlflow")
            cursor.execute("CREATE DATABASE mlflow_auth")
        connection.close()
        yield {"host": "127.0.0.1", "port": str(port), "user": "zoobench",
               "password": password, "base": str(base)}
    finally:
        subprocess.run([*as_user, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "stop"], **run)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory) -> Iterator[dict[str, str]]:
    """``mlflow server --app-name basic-auth`` on the PostgreSQL store; secrets in its
    environment (PGPASSWORD for libpq, the first admin's password, the CSRF key)."""
    pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs Flask-WTF "
                        "(pip install 'mlflow[auth]')")
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    admin_password = secrets.token_hex(16)
    db = f"postgresql+psycopg2://{postgres['user']}@{postgres['host']}:{postgres['port']}"
    ini = folder / "basic_auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = {db}/mlflow_auth\n"
                   "authorization_function = mlflow.server.auth:authenticate_request_basic_auth"
                   "\n")
    env = {**os.environ, "PGPASSWORD": postgres["password"],
           "MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
           "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)}
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
               "--backend-store-uri", f"{db}/mlflow", "--host", "127.0.0.1", "--port",
               str(port), "--workers", "1", "--serve-artifacts", "--artifacts-destination",
               str(folder / "artifacts")]
    assert not any(postgres["password"] in a or admin_password in a for a in command)
    log = open(folder / "server.log", "w")  # noqa: SIM115  (open while the server runs)
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              cwd=folder, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{uri}/health", 120, server)
        yield {"uri": uri, "admin_password": admin_password, "log": str(folder / "server.log")}
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


# Real PostgreSQL + MLflow server + a sweep through Ray: about a minute or more.
@pytest.mark.slow
def test_a_sweep_logs_to_mlflow_on_postgresql_with_authentication(mlflow_server, tmp_path,
                                                                  monkeypatch):
    uri = mlflow_server["uri"]
    # Without credentials the server answers 401, for reads and writes alike.
    for path, data in (("/api/2.0/mlflow/experiments/search?max_results=1", None),
                       ("/api/2.0/mlflow/experiments/create", b'{"name": "intruder"}')):
        request = urllib.request.Request(uri + path, data=data,
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401, path

    # The admin makes the sweep's user, as a team would.
    from mlflow.server.auth.client import AuthServiceClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_server["admin_password"])
    user_password = secrets.token_hex(16)
    AuthServiceClient(uri).create_user("sweeper", user_password)
    # A wrong password is refused too.
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    from mlflow.tracking import MlflowClient

    with pytest.raises(Exception, match="401|Unauthorized|credentials"):
        MlflowClient(uri).search_experiments()

    spec = tmp_path / "pg.yaml"
    spec.write_text(SPEC)
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_USERNAME": "sweeper",
           "MLFLOW_TRACKING_PASSWORD": user_password}
    command = [sys.executable, "-m", "bench", "sweep", str(spec), "--results", str(results),
               "--tracking-uri", uri]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert user_password not in done.stdout + done.stderr

    trials = pd.read_parquet(results / "trials.parquet")
    assert len(trials) == 2 and set(trials["status"]) == {"TERMINATED"}
    assert trials["mlflow_run_id"].notna().all()
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "sweeper")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", user_password)
    client = MlflowClient(uri)
    for row in trials.itertuples():
        run = client.get_run(row.mlflow_run_id)
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(row.mlflow_run_id, "val_mean_iou")
        assert [(m.step, round(m.value, 6)) for m in history] == [
            (1, round(float(row.val_mean_iou), 6))]
        logged = " ".join([*run.data.params.values(), *run.data.tags.values()])
        assert user_password not in logged and "sweeper" not in run.data.params.values()
        names = {a.path for a in client.list_artifacts(row.mlflow_run_id)}
        assert "model" in names  # the model went up through the server's artifact proxy
