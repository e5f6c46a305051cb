"""The SQLite tracking store made while the spec is checked (bench.tracking.store_template):
copied into place only where no store is, and equal to the store MLflow makes itself."""

from __future__ import annotations

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


def test_the_prepared_store_is_the_one_mlflow_makes(tmp_path):
    file = tmp_path / "results" / "mlflow.db"
    uri = f"sqlite:///{file}"
    assert store_template.prepare(uri)
    assert not file.parent.exists()  # made aside: a refused spec leaves no folder behind
    assert store_template.install(uri)
    fresh = tmp_path / "fresh.db"
    MlflowClient(tracking_uri=f"sqlite:///{fresh}").search_experiments()
    assert _tables(file) == _tables(fresh)
    assert [e.name for e in MlflowClient(tracking_uri=uri).search_experiments()] == ["Default"]
    assert not list(file.parent.glob(".*zoobench-tmp"))
    assert not store_template.install(uri)  # used once


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
    done = subprocess.run([sys.executable, "-c", _EXIT_MID_WAY, str(tmp_path / "mlflow.db"),
                           file, str(after_s)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    scratch = Path(done.stdout.strip())
    assert scratch.name.startswith("zoobench-store-")
    assert not scratch.exists()
    assert not (tmp_path / "mlflow.db").exists()


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
