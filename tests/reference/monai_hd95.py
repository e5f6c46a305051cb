"""Record MONAI's and medpy's HD95 of a set of mask pairs, as the reference for zoo.case_metrics.

MONAI needs torch, which the project does not install, so the values are computed once in a
separate environment and kept in ``monai_hd95.json`` beside this file (masks included, so the
test does not depend on a random generator's stream). Regenerate with:

    python -m venv /tmp/monaivenv
    /tmp/monaivenv/bin/pip install torch monai==1.6.1 medpy==0.5.2
    /tmp/monaivenv/bin/python tests/reference/monai_hd95.py

``tests/test_case_metrics_reference.py`` compares ``case_scores`` with these numbers.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

OUT = Path(__file__).with_name("monai_hd95.json")


def box(shape: tuple[int, int], *boxes: tuple[int, int, int, int]) -> np.ndarray:
    """A boolean mask with the rectangles [r0:r1, c0:c1] set."""
    mask = np.zeros(shape, bool)
    for r0, r1, c0, c1 in boxes:
        mask[r0:r1, c0:c1] = True
    return mask


def parse(rows: list[str]) -> np.ndarray:
    return np.array([[ch == "1" for ch in row] for row in rows])


def blobby(rng: np.random.Generator, shape: tuple[int, int], density: float) -> np.ndarray:
    """Random blobs: noise smoothed by a Gaussian, thresholded at a random level."""
    smooth = ndimage.gaussian_filter(rng.random(shape), sigma=rng.uniform(0.7, 2.5))
    return smooth > np.quantile(smooth, 1 - density)


def pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, truth, prediction): hand-made cases, then random ones."""
    cases = [
        ("square shifted by 2", box((10, 10), (2, 6, 2, 6)), box((10, 10), (2, 6, 4, 8))),
        ("square shifted by 1", box((10, 10), (2, 6, 2, 6)), box((10, 10), (2, 6, 3, 7))),
        ("single pixels 2 apart", box((7, 7), (3, 4, 3, 4)), box((7, 7), (3, 4, 5, 6))),
        ("touching the image border", box((9, 12), (0, 9, 0, 5)), box((9, 12), (0, 7, 0, 7))),
        # A far false-positive blob: more than 5% of the prediction's boundary, less than
        # 5% of both boundaries together, so the two forms differ by tens of pixels.
        ("far blob", box((64, 64), (2, 42, 2, 42)),
         box((64, 64), (2, 42, 2, 42), (58, 62, 58, 62))),
        # Found by a random search: here the pooled form exceeds the directed maximum.
        ("pooled above directed max",
         parse(["0011100", "0101010", "0101000", "1001000", "0101100"]),
         parse(["0010001", "0110010", "1001000", "0000000", "0001001"])),
    ]
    rng = np.random.default_rng(25)
    for i in range(40):
        shape = (int(rng.integers(6, 41)), int(rng.integers(6, 41)))
        truth = blobby(rng, shape, rng.uniform(0.05, 0.6))
        pred = truth.copy() if i % 4 == 0 else blobby(rng, shape, rng.uniform(0.05, 0.6))
        if i % 4 == 0:  # a perturbed copy of the truth: the usual case of a good model
            flip = rng.random(shape) < 0.08
            pred = np.where(flip, ~pred, pred)
        if truth.any() and pred.any():
            cases.append((f"random {i}", truth, pred))
    return cases


def main() -> None:
    import monai
    import torch
    from medpy.metric.binary import hd95 as medpy_hd95
    from monai.metrics import compute_hausdorff_distance

    def monai_hd(truth: np.ndarray, pred: np.ndarray, **kwargs) -> float:
        # One-hot (batch, class, H, W) with the background channel left out.
        y = torch.tensor(np.stack([~truth, truth])[None], dtype=torch.float32)
        y_pred = torch.tensor(np.stack([~pred, pred])[None], dtype=torch.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MONAI warns on empty masks
            return float(compute_hausdorff_distance(y_pred, y, include_background=False,
                                                    **kwargs)[0, 0])

    records = []
    for name, truth, pred in pairs():
        records.append({
            "name": name,
            "truth": ["".join("1" if v else "0" for v in row) for row in truth],
            "pred": ["".join("1" if v else "0" for v in row) for row in pred],
            "monai_hd95": monai_hd(truth, pred, percentile=95),
            "monai_hd95_pred_to_truth": monai_hd(truth, pred, percentile=95, directed=True),
            "monai_hd": monai_hd(truth, pred),
            "medpy_hd95": float(medpy_hd95(pred, truth)),
        })
    empty, some = np.zeros((8, 8), bool), box((8, 8), (2, 5, 2, 5))
    # MONAI's values when a mask is empty (JSON has no NaN or inf: kept as strings).
    on_empty = {label: {"hd95": str(monai_hd(t, p, percentile=95)), "hd": str(monai_hd(t, p))}
                for label, t, p in (("empty prediction", some, empty),
                                    ("empty truth", empty, some), ("both empty", empty, empty))}
    OUT.write_text(json.dumps({"monai": monai.__version__, "torch": torch.__version__,
                               "cases": records, "monai_on_empty": on_empty}, indent=1) + "\n")
    print(f"{len(records)} cases -> {OUT}")


if __name__ == "__main__":
    main()
