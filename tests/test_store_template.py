"""The SQLite tracking store made while the spec is checked (bench.tracking.store_template):
copied into place only where no store is, and equal to the store MLflow makes itself."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from bench.tracking import runs, store_template


def _tables(file: Path) -> dict[str, list[tuple]]:
    """Each table's columns, and the schema revision MLflow stamped."""
    with sqlite3.connect(file) as db:
        names = [row[0] for row in db.execute(
            "select name from sqlite_master where type = 'table' order by name")]
        tables = {name: db.execute(f"pragma table_info('{name}')").fetchall() for name in names}
        tables["revision"] = db.execute("select version_num from alembic_version").fetchall()
    return tables


def _rows(file: Path) -> dict[str, list[tuple]]:
    """Each table's rows, the experiments' creation and update times left out."""
    with sqlite3.connect(file) as db:
        names = [row[0] for row in db.execute(
            "select name from sqlite_master where type = 'table' order by name")]
        rows = {name: sorted(db.execute(f"select * from '{name}'").fetchall(), key=repr)
                for name in names if name != "experiments"}
        rows["experiments"] = db.execute(
            "select experiment_id, name, artifact_location, lifecycle_stage, workspace "
            "from experiments").fetchall()
    return rows


def _made(tmp_path: Path, name: str) -> Path:
    """A store prepared and installed at ``tmp_path/name/mlflow.db``, then opened by MLflow."""
    file = tmp_path / name / "mlflow.db"
    uri = f"sqlite:///{file}"
    assert store_template.prepare(uri)
    assert not file.parent.exists()  # made aside: a refused spec leaves no folder behind
    assert store_template.install(uri)
    assert [e.name for e in MlflowClient(tracking_uri=uri).search_experiments()] == ["Default"]
    assert not list(file.parent.glob(".*zoobench-tmp"))
    assert not store_template.install(uri)  # used once
    return file


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder of this test's own, and the test run in ``tmp_path``."""
    monkeypatch.setenv("ZOOBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "cache"


def test_the_prepared_store_is_the_one_mlflow_makes(tmp_path, cache):
    fresh = tmp_path / "fresh.db"
    MlflowClient(tracking_uri=f"sqlite:///{fresh}").search_experiments()
    made = _made(tmp_path, "made")  # by MLflow's migrations, then kept in the cache
    template = store_template.template_file()
    assert template.parent == cache and template.is_file()
    copied = _made(tmp_path, "copied")  # a copy of the kept one
    for file in (made, copied):
        assert _tables(file) == _tables(fresh)
        assert _rows(file) == _rows(fresh)  # the Default experiment's location: this folder
    assert _tables(template) == _tables(fresh)
    with sqlite3.connect(template) as db:
        assert db.execute("select count(*) from experiments").fetchone() == (0,)
    assert not list(cache.glob(".*"))  # nothing half-written left beside it


def test_a_kept_store_is_copied_and_its_default_experiment_is_this_folders(tmp_path, cache):
    _made(tmp_path, "first")
    with sqlite3.connect(store_template.template_file()) as db:
        db.execute("create table zoobench_marker (x)")  # to tell the copy from a new store
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)  # the fixture's monkeypatch.chdir puts the folder back
    file = _made(tmp_path, "second")
    with sqlite3.connect(file) as db:
        assert db.execute("select name from sqlite_master where name = 'zoobench_marker'"
                          ).fetchall() == [("zoobench_marker",)]
    default = MlflowClient(tracking_uri=f"sqlite:///{file}").get_experiment("0")
    assert default.artifact_location == str(elsewhere / "mlruns" / "0")


@pytest.mark.parametrize("damage", [b"not a database", b""])
def test_a_damaged_kept_store_is_made_anew_and_kept_again(tmp_path, cache, damage):
    template = store_template.template_file()
    cache.mkdir()
    template.write_bytes(damage)
    file = _made(tmp_path, "results")
    with sqlite3.connect(template) as db:
        assert db.execute("pragma quick_check").fetchall() == [("ok",)]
        assert db.execute("select count(*) from experiments").fetchone() == (0,)
    assert _tables(template) == _tables(file)


def test_without_a_cache_folder_the_store_is_still_made(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("ZOOBENCH_CACHE_DIR", str(blocker / "cache"))  # cannot be made
    _made(tmp_path, "results")
    assert not store_template.template_file().exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "results"]


def test_a_store_that_exists_is_never_replaced(tmp_path):
    file = tmp_path / "mlflow.db"
    uri = f"sqlite:///{file}"
    assert store_template.prepare(uri)
    client = MlflowClient(tracking_uri=uri)  # another sweep made the store meanwhile
    client.create_experiment("theirs")
    assert not store_template.install(uri)
    assert "theirs" in [e.name for e in client.search_experiments()]
    assert not store_template.prepare(uri)  # nothing to make for a store that exists


def test_only_a_missing_sqlite_store_is_prepared(tmp_path):
    assert not store_template.prepare("http://127.0.0.1:5000")
    assert not store_template.prepare(f"file://{tmp_path}/mlruns")
    assert not store_template.install(f"sqlite:///{tmp_path}/never-prepared.db")


def test_a_sweep_starts_its_tracking_on_the_prepared_store(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    uri = runs.default_tracking_uri(results)
    assert store_template.prepare(uri)
    track = runs.start_sweep(uri, results, "smoke", "name: smoke\n", {"epochs": 2})
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(track.parent_run_id)
    assert parent.data.tags[runs.TAG_SWEEP] == "smoke"
    assert parent.data.params == {"epochs": "2"}
    assert client.get_experiment(track.experiment_id).artifact_location == \
        (results / "mlartifacts").as_uri()
    assert store_template.sqlite_file(uri) == results / "mlflow.db"


# A refused spec's command exits while the store is still being made; its scratch folder must
# go without a traceback (tempfile's finaliser raised "Directory not empty" in one CI run).
_EXIT_MID_WAY = """
import sys, time
from bench.tracking import store_template
uri = "sqlite:///" + sys.argv[1]
assert store_template.prepare(uri)
scratch = store_template._pending[uri][1]
start = time.monotonic()
while not (scratch / sys.argv[2]).exists() and time.monotonic() - start < 30:
    time.sleep(0.0005)
time.sleep(float(sys.argv[3]))
print(scratch)
"""


# Exits in a migration's transaction (its journal file there) and after the database appears.
@pytest.mark.parametrize(("file", "after_s"), [("mlflow.db-journal", 0.0), ("mlflow.db", 0.2)])
def test_an_exit_while_the_store_is_made_leaves_no_folder_and_no_traceback(
        tmp_path, file, after_s):
    cache = tmp_path / "cache"  # empty: the store is made by MLflow's migrations, then kept
    done = subprocess.run([sys.executable, "-c", _EXIT_MID_WAY, str(tmp_path / "mlflow.db"),
                           file, str(after_s)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ZOOBENCH_CACHE_DIR": str(cache)})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    scratch = Path(done.stdout.strip())
    assert scratch.name.startswith("zoobench-store-")
    assert not scratch.exists()
    assert not (tmp_path / "mlflow.db").exists()
    assert not list(cache.glob(".*"))  # nor a half-written cache file


_JOURNAL = """
import itertools, sys
from pathlib import Path
scratch = Path(sys.argv[1])
for n in itertools.count():
    try:
        (scratch / f"mlflow.db-journal{n % 3}").write_bytes(b"x" * 512)
        (scratch / f"mlflow.db-journal{(n + 1) % 3}").unlink(missing_ok=True)
    except FileNotFoundError:  # the folder is gone: SQLite can make no file there either
        break
    if n == 100:
        print("writing", flush=True)
"""


def test_a_folder_written_to_while_it_is_removed_is_removed(tmp_path):
    """The race above made sure: another process adds and drops files, as SQLite does its
    journal (outside the GIL), until the folder is gone; one rmtree fails there with
    "Directory not empty"."""
    scratch = tmp_path / "zoobench-store-busy"
    scratch.mkdir()
    with subprocess.Popen([sys.executable, "-c", _JOURNAL, str(scratch)],
                          stdout=subprocess.PIPE, text=True) as writer:
        try:
            assert writer.stdout.readline() == "writing\n"
            store_template._remove(scratch)
            assert not scratch.exists()
            assert writer.wait(timeout=30) == 0
        finally:
            writer.kill()


# What MLflow logs from the thread making an abandoned store, once its folder is gone at exit
# (a failed open, its traceback), must not follow the command's last line (a refused spec's
# error); with no store being made, MLflow's logging is left alone.
_ABANDONED = """
import logging, sys, tempfile
from concurrent.futures import Future
from pathlib import Path
import mlflow  # configures its loggers, as in a sweep's driver
from bench.common.quiet import quiet_start_up_logs
from bench.tracking import store_template
quiet_start_up_logs(local_ray=True)  # as the sweep's driver: a level of their own
future = Future()
if sys.argv[1] == "done":
    future.set_result(None)
scratch = Path(tempfile.mkdtemp(prefix="zoobench-store-"))
store_template._pending["sqlite:///x.db"] = (future, scratch)
store_template._remove_abandoned()
assert not scratch.exists()
logging.getLogger("mlflow.store.db.utils").error("SQLAlchemy database error. (Background)")
logging.getLogger("alembic.runtime.migration").error("SQLAlchemy database error. (Background)")
print("zoobench: error: the last line", file=sys.stderr)
"""


@pytest.mark.parametrize("store", ["being_made", "done"])
def test_an_abandoned_store_being_made_logs_nothing_after_the_command(store):
    done = subprocess.run([sys.executable, "-c", _ABANDONED, store], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    logged = "SQLAlchemy database error" in done.stderr
    assert logged is (store == "done")
    assert done.stderr.strip().splitlines()[-1] == "zoobench: error: the last line"
