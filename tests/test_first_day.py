"""A newcomer's first day with their own data (issue 30): a relative ``folder`` path trains,
a missing one is exit 2 before any trial naming the path, a fixed spec starts over with
``--restart`` (the earlier run archived, its MLflow runs in the trash), and MLflow agrees
with ``trials.parquet``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.common.errors import UsageError
from bench.spec.model import load_spec
from tests.conftest import run_cli

SPEC = """\
name: mine
dataset: {name: folder, path: mydata, height: 16, width: 16, classes: 2}
models: [testnet]
losses: [dice]
seeds: [0]
epochs: EPOCHS
params: {batch_size: 4, lr: 1.0e-3}
"""


def _own_data(folder: Path, n: int = 20) -> Path:
    """``n`` 16x16 RGB images, each a bright square on noise, with its class-index mask."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(n):
        mask = np.zeros((16, 16), np.uint8)
        top, left = rng.integers(0, 8, size=2)
        mask[top:top + 8, left:left + 8] = 1
        image = rng.integers(0, 60, size=(16, 16, 3)).astype(np.uint8)
        image[mask == 1] = 220
        Image.fromarray(image).save(folder / "images" / f"{i:02d}.png")
        Image.fromarray(mask).save(folder / "masks" / f"{i:02d}.png")
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder: ``spec.yaml`` beside ``mydata/`` (images/ and masks/)."""
    _own_data(tmp_path / "project" / "mydata")
    (tmp_path / "project" / "spec.yaml").write_text(SPEC.replace("EPOCHS", "1"))
    return tmp_path / "project"


def test_relative_paths_resolve_against_the_spec_folder_and_travel_absolute(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from another working folder, ``path: mydata`` is the spec file's neighbour, and
    trials get it absolute (they run in Ray's worker folders)."""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    spec = load_spec(project / "spec.yaml")
    assert spec.datasets[0].options["path"] == str(project / "mydata")
    assert "path: mydata" in spec.source  # what a resume compares is the file as written


def test_a_missing_path_or_layout_is_one_line_naming_it(project: Path) -> None:
    spec = project / "spec.yaml"
    spec.write_text(SPEC.replace("EPOCHS", "1").replace("mydata", "gone"))
    with pytest.raises(UsageError, match=rf"dataset: path gone does not exist \(relative "
                                         rf"paths are read from the spec's folder, {project}\)$"):
        load_spec(spec)
    (project / "flat" / "images").mkdir(parents=True)
    spec.write_text(SPEC.replace("EPOCHS", "1").replace("mydata", "flat"))
    with pytest.raises(UsageError, match=rf"missing directory {project}/flat/masks"):
        load_spec(spec)


@pytest.mark.slow  # two real sweeps through Ray and MLflow: ~2 min on a shared machine
def test_the_first_day(project: Path, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    results = project / "results"
    monkeypatch.chdir(project)  # the newcomer runs from the folder holding spec.yaml, mydata
    assert run_cli("sweep", "spec.yaml", "--results", "results") == 0
    trials = pd.read_parquet(results / "trials.parquet")
    assert list(trials["status"]) == ["TERMINATED"]
    first_run = str(trials["mlflow_run_id"].iloc[0])

    # A typo in the path: exit 2 before any trial, one line naming the path.
    (project / "typo.yaml").write_text(SPEC.replace("EPOCHS", "1")
                                       .replace("mydata", "mydta").replace("mine", "typo"))
    capsys.readouterr()
    assert run_cli("sweep", "typo.yaml", "--results", "results") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mydta" in err[0] and "does not exist" in err[0], err
    assert not (results / "trials.parquet" / "sweep=typo").exists()

    # The spec fixed (2 epochs): refused without --restart, naming it; started over with.
    (project / "spec.yaml").write_text(SPEC.replace("EPOCHS", "2"))
    assert run_cli("sweep", "spec.yaml", "--results", "results") == 2
    assert "--restart" in capsys.readouterr().err
    assert run_cli("sweep", "spec.yaml", "--results", "results", "--restart") == 0
    err = capsys.readouterr().err
    assert "zoobench: --restart: setting sweep 'mine' aside" in err
    assert "trials.parquet/sweep=mine ->" in err
    trials = pd.read_parquet(results / "trials.parquet")
    assert list(trials["epochs_done"]) == [2] and list(trials["status"]) == ["TERMINATED"]
    archived = list((results / "archive").glob("mine-*/trials.parquet/sweep=mine"))
    assert len(archived) == 1
    old = pd.read_parquet(archived[0])
    assert list(old["mlflow_run_id"]) == [first_run] and list(old["epochs_done"]) == [1]
    assert list((results / "archive").glob("mine-*/ray/mine"))  # Tune's state, archived
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    retired = client.get_run(first_run)
    assert retired.info.lifecycle_stage == "deleted"
    assert "zoobench.restarted_at" in retired.data.tags
    new_run = client.get_run(str(trials["mlflow_run_id"].iloc[0]))
    assert new_run.info.lifecycle_stage == "active"
    assert new_run.data.tags["mlflow.parentRunId"] != retired.data.tags["mlflow.parentRunId"]
