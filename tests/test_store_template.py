"""The SQLite tracking store made while the spec is checked (bench.tracking.store_template):
copied into place only where no store is, and equal to the store MLflow makes itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
