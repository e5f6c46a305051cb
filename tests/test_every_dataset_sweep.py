"""Every built-in dataset in one real sweep, each tested on its held-out split (issue 10).

One ``zoobench sweep`` over ``shapes``, ``digits``, ``moving_digits``, a ``folder`` of PNGs
and an ``npz`` file written here, with an image model and a sequence model
(``skip_incompatible`` pairs each dataset with the model that takes it): every trial ends
with finite ``test_*`` columns, and the epoch it tested (``selected_epoch``) is its best
validation epoch in ``history.parquet``. Its workers are warm (``reuse_workers``): one process
goes from image data to sequences and from one model to the other.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import run_cli

# A real sweep over every built-in dataset: ~50 s; run on demand (pytest -m slow).
pytestmark = pytest.mark.slow

EPOCHS = 3


def _folder(root):
    """Twenty 16x16 RGB images and their 3-class masks: a bright square is class 1 or 2."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(20):
        image = rng.integers(0, 60, size=(16, 16, 3), dtype=np.uint8)
        mask = np.zeros((16, 16), np.uint8)
        top, left = rng.integers(0, 8, size=2)
        mask[top:top + 8, left:left + 8] = 1 + i % 2
        image[mask > 0] += np.uint8(150)
        Image.fromarray(image).save(root / "images" / f"s{i:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"s{i:02d}.png")
    return root


def _npz(path):
    """Twenty 16x16 greyscale images whose class is their brightness band (3 classes)."""
    x = np.random.default_rng(1).integers(0, 256, size=(20, 16, 16), dtype=np.uint8)
    np.savez(path, x=x, y=(x // 86).astype(np.int64))
    return path


@pytest.fixture(scope="module")
def every_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("every-dataset")
    folder, npz = _folder(root / "folder"), _npz(root / "data.npz")
    spec = root / "every.yaml"
    spec.write_text(f"""\
name: every
datasets:
  - {{name: shapes, height: 16, width: 16, classes: 3, train: 16, val: 8, test: 8}}
  - {{name: digits, height: 16, width: 16, digit_size: 8, train: 16, val: 8, test: 8}}
  - {{name: moving_digits, height: 16, width: 16, frames: 4, digit_size: 8, train: 8, val: 4,
     test: 4}}
  - {{name: folder, path: {folder}, classes: 3}}
  - {{name: npz, path: {npz}, classes: 3}}
skip_incompatible: true
models: [testnet, {{lstm_shallow: {{filters: 4}}}}]
losses: [dice]
seeds: [0]
epochs: {EPOCHS}
params: {{batch_size: 4, lr: 1.0e-2}}
metric: val_mean_iou
mode: max
reuse_workers: true
""")
    results = root / "results"
    assert run_cli("sweep", str(spec), "--results", str(results)) == 0
    trials = pd.read_parquet(results / "trials.parquet")
    history = pd.read_parquet(results / "history.parquet")
    return trials, history


def test_each_dataset_ran_with_the_model_that_takes_it(every_dataset):
    trials, _ = every_dataset
    pairs = dict(zip(trials["dataset"].astype(str), trials["model"].astype(str), strict=True))
    assert pairs == {"shapes": "testnet", "digits": "testnet", "folder": "testnet",
                     "npz": "testnet", "moving_digits": "lstm_shallow(filters=4)"}
    assert list(trials["status"]) == ["TERMINATED"] * 5, trials[["dataset", "error"]]
    assert (trials["epochs_done"] == EPOCHS).all()


def test_every_trial_has_finite_test_columns(every_dataset):
    trials, _ = every_dataset
    for column in ("test_loss", "test_mean_iou", "test_dice_coef", "test_pixel_accuracy",
                   "test_case_dice_fg"):
        values = trials[column].astype(float)
        assert values.map(math.isfinite).all(), (column, trials[["dataset", column]])
    assert trials["test_mean_iou"].between(0, 1).all()


def test_the_tested_epoch_is_the_best_validation_epoch(every_dataset):
    trials, history = every_dataset
    for trial in trials.itertuples():
        epochs = history[history["trial_id"] == trial.trial_id].sort_values("epoch")
        assert list(epochs["epoch"]) == list(range(1, EPOCHS + 1))
        # The first epoch reaching the best value: later ties do not replace the selection.
        best = int(epochs.loc[epochs["val_mean_iou"].idxmax(), "epoch"])
        assert trial.selected_epoch == best, (trial.dataset, list(epochs["val_mean_iou"]))
        assert trial.val_mean_iou == pytest.approx(epochs["val_mean_iou"].max())
