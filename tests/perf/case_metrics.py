"""How long per-case scoring takes at test time: ``python tests/perf/case_metrics.py``.

Scores N cases of HxW with K classes (zoo.case_metrics.case_scores) against a baseline run in
the same command: the pooled confusion-matrix IoU over the same arrays (what the epoch
metrics compute), and prints both times and their ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from zoo.case_metrics import case_scores


def pooled_iou(truth: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Per-class IoU of one confusion matrix over every pixel (the baseline)."""
    cm = np.bincount(truth.ravel() * k + pred.ravel(), minlength=k * k).reshape(k, k)
    inter = np.diag(cm)
    return inter / np.maximum(cm.sum(0) + cm.sum(1) - inter, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    truth = rng.integers(0, args.classes, size=(args.cases, args.size, args.size))
    noise = rng.integers(0, args.classes, truth.shape)
    pred = np.where(rng.random(truth.shape) < 0.8, truth, noise)
    case_scores(truth[:2], pred[:2], args.classes)  # warm up imports
    timings = {"case_scores": [], "pooled_iou": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        case_scores(truth, pred, args.classes)
        timings["case_scores"].append(time.perf_counter() - start)
        start = time.perf_counter()
        pooled_iou(truth, pred, args.classes)
        timings["pooled_iou"].append(time.perf_counter() - start)
    a, b = np.median(timings["case_scores"]), np.median(timings["pooled_iou"])
    print(f"{args.cases} cases of {args.size}x{args.size}, {args.classes} classes, "
          f"median of {args.rounds}:")
    print(f"  case_scores  {a:8.4f} s")
    print(f"  pooled IoU   {b:8.4f} s  (baseline)")
    print(f"  ratio        {a / b:8.1f}")


if __name__ == "__main__":
    main()
