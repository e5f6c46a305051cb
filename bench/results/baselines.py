"""Next-frame baselines: what a trained model must beat, with no training and no trial slot.

- ``persistence``: the next frame is the last input frame (x's last channel: the frame
  itself in the sequence layout, the latest stacked frame with ``layout: channels``).
- ``mean_frame``: the per-pixel mean of every training target frame, the same picture
  for every input (the best constant prediction in squared error).

They are scored by zoo's own ``psnr`` and ``ssim`` metrics on the same validation and test
frames as the trained models (the data of each seed the sweep ran), so their rows compare
with the trained rows. ``with_baselines`` adds them to a next-frame leaderboard, with each
row's ``gain_vs_persistence`` (test PSNR minus the persistence row's, in dB).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

BASELINE_LOSS = "-"
GAIN_COLUMN = "gain_vs_persistence"


def persistence(x: np.ndarray) -> np.ndarray:
    """Copy the last input frame: x (N, [T,] H, W, C) -> (N, [T,] H, W, 1), x's last channel."""
    return x[..., -1:]


def mean_frame(y_train: np.ndarray, like: np.ndarray) -> np.ndarray:
    """The mean training frame (H, W, 1), broadcast to ``like``'s shape (N, [T,] H, W, 1)."""
    frames = y_train.reshape(-1, *y_train.shape[-3:])
    return np.broadcast_to(frames.mean(axis=0, dtype=np.float64).astype(np.float32), like.shape)


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "persistence": lambda x, y, y_train: persistence(x),
    "mean_frame": lambda x, y, y_train: mean_frame(y_train, y),
}


def frame_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """``{"psnr": dB, "ssim": ...}``: zoo's next-frame metrics, mean over every frame.

    ``y``, ``pred``: (N, [T,] H, W, 1) in [0, 1].
    """
    import zoo

    scores = {}
    for metric in zoo.metrics.default_metrics(1, "next_frame"):
        metric.update_state(y, pred)
        scores[metric.name] = float(metric.result())
    return scores


def dataset_arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """A ``tf.data`` split's inputs and targets as two arrays (N, ...), weights dropped."""
    xs, ys = [], []
    for x, y, *_ in dataset.as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def baseline_scores(dataset: str, options: dict[str, Any], seeds: Iterable[int]) -> pd.DataFrame:
    """One row per baseline x seed: ``model, seed, val_psnr, val_ssim, test_psnr, test_ssim``.

    Each seed's data is what a trial of that seed trains and is tested on.
    """
    import zoo

    rows = []
    for seed in seeds:
        splits = zoo.datasets.load_splits(dataset, batch_size=256, seed=int(seed), **options)
        _, y_train = dataset_arrays(splits.train)
        held_out = {split: dataset_arrays(getattr(splits, split)) for split in ("val", "test")}
        for name, predict in BASELINES.items():
            row: dict[str, Any] = {"model": name, "seed": int(seed)}
            for split, (x, y) in held_out.items():
                if len(x) == 0:
                    continue
                for metric, value in frame_scores(y, predict(x, y, y_train)).items():
                    row[f"{split}_{metric}"] = value
            rows.append(row)
    return pd.DataFrame(rows)


def baseline_rows(scores: pd.DataFrame, sweep: str, dataset: str, metric: str,
                  mode: str) -> pd.DataFrame:
    """Leaderboard rows of ``baseline_scores``: one per baseline, means over seeds.

    Columns: the leaderboard keys (``loss`` is ``"-"``), ``metric, mode, {metric}_mean,
    score, count`` (seeds), ``seed_values``, ``<each score>_mean`` and ``baseline`` True;
    ``rank`` is left empty (a reference, not a contestant).
    """
    rows = []
    for name, group in scores.groupby("model", sort=False):
        columns = [c for c in group if c not in ("model", "seed")]
        means = {f"{c}_mean": float(group[c].mean()) for c in columns}
        value = float(group[metric].mean()) if metric in group else math.nan
        rows.append({"sweep": sweep, "dataset": dataset, "model": name,
                     "loss": BASELINE_LOSS, "metric": metric, "mode": mode,
                     f"{metric}_mean": value, "score": value, "count": len(group),
                     "failed": 0, "unfinished": 0,
                     "seed_values": json.dumps({str(s): float(v) for s, v in
                                                zip(group["seed"], group.get(metric, []),
                                                    strict=False)}),
                     **means, "baseline": True})
    return pd.DataFrame(rows)


def add_gain(board: pd.DataFrame) -> pd.DataFrame:
    """``gain_vs_persistence``: each row's mean test PSNR minus the persistence row's (dB),
    per sweep x dataset; validation PSNR where nothing was tested."""
    board = board.copy()
    column = "test_psnr_mean" if "test_psnr_mean" in board and \
        board["test_psnr_mean"].notna().any() else "val_psnr_mean"
    board[GAIN_COLUMN] = math.nan
    if column not in board:
        return board
    for _, group in board.groupby(["sweep", "dataset"], sort=False):
        reference = group.loc[group["model"] == "persistence", column]
        if len(reference):
            board.loc[group.index, GAIN_COLUMN] = group[column] - float(reference.iloc[0])
    return board


def with_baselines(board: pd.DataFrame, trials: pd.DataFrame,
                   datasets: Mapping[str, tuple[str, dict[str, Any]]]) -> pd.DataFrame:
    """``board`` plus, per next-frame dataset, the ``persistence`` and ``mean_frame`` rows,
    and ``gain_vs_persistence``; ``board`` unchanged without next-frame trials.

    ``datasets`` maps each dataset label of the trials (their ``dataset`` column) to its
    registry name and options. A dataset's trials are next-frame trials when they report
    ``val_psnr``. The baselines are scored on the data of every seed among its ranked
    trials, and ranked by the board's metric (not given a rank: references, not
    contestants).
    """
    from bench.results.leaderboard import final_stage

    # Next-frame trials report psnr (zoo.metrics.default_metrics); loading the data just
    # to ask its task would cost every segmentation sweep a dataset build.
    if board.empty or trials.empty or "val_psnr" not in trials:
        return board
    ranked = final_stage(trials)
    # The board ranks by the test twin of the sweep's metric when trials were tested.
    metric, mode = str(board["metric"].iloc[0]), str(board["mode"].iloc[0])
    sweep = str(board["sweep"].iloc[0])
    rows = []
    for label, (name, options) in datasets.items():
        own = ranked[ranked["dataset"].astype(str) == label]
        if own.empty or not own["val_psnr"].notna().any():
            continue
        seeds = sorted({int(s) for s in own["seed"].dropna()})
        rows.append(baseline_rows(baseline_scores(name, options, seeds), sweep, label,
                                  metric, mode))
    if not rows:
        return board
    out = pd.concat([board.assign(baseline=False), *rows], ignore_index=True)
    # Each dataset's baselines after its own ranked rows (the board is sorted by dataset).
    out = out.sort_values(["sweep", "dataset"], kind="stable", ignore_index=True)
    out["rank"] = out["rank"].astype("Int64")
    out["baseline"] = out["baseline"].astype(bool)
    return add_gain(out)


def stored_baselines(results: Any, board: pd.DataFrame) -> pd.DataFrame:
    """``board`` (re-aggregated from trials) plus the baseline rows its sweeps stored in
    ``results/leaderboard.parquet``, scored by ``board``'s metric; ``gain_vs_persistence``
    added when there are any. ``board`` unchanged when nothing was stored."""
    from pathlib import Path

    from bench.results.leaderboard import _read_table

    path = Path(results) / "leaderboard.parquet"
    if board.empty or not path.exists():
        return board
    stored = _read_table(path, None)
    if "baseline" not in stored:
        return board
    rows = stored[stored["baseline"].fillna(False).astype(bool)
                  & stored["sweep"].isin(board["sweep"].unique())]
    if rows.empty:
        return board
    metric, mode = str(board["metric"].iloc[0]), str(board["mode"].iloc[0])
    value = rows.get(f"{metric}_mean", math.nan)
    rows = rows[[c for c in rows if c.endswith("_mean") or c in (
        "sweep", "dataset", "model", "loss", "count", "failed", "unfinished",
        "seed_values", "baseline")]].assign(metric=metric, mode=mode, score=value)
    out = pd.concat([board.assign(baseline=False), rows], ignore_index=True)
    out["rank"] = out["rank"].astype("Int64")
    out["baseline"] = out["baseline"].astype(bool)
    return add_gain(out)
