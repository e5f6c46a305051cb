"""zoo.case_metrics' HD95 against MONAI 1.6.1 and medpy 0.5.2, the implementations it follows.

MONAI needs torch, which the project does not install: its values (and medpy's) on 46 mask
pairs were recorded once by ``tests/reference/monai_hd95.py`` into ``monai_hd95.json``. Where
``monai`` and ``torch`` are importable, a hypothesis test also compares against MONAI live.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from zoo.case_metrics import case_scores

REFERENCE = json.loads((Path(__file__).parent / "reference" / "monai_hd95.json").read_text())
CASES = {case["name"]: case for case in REFERENCE["cases"]}


def mask(rows: list[str]) -> np.ndarray:
    """A (1, H, W) 0/1 label map from rows of '0'/'1' characters."""
    return np.array([[ch == "1" for ch in row] for row in rows], np.int64)[None]


def hd95_of(case: dict, form: str) -> float:
    return float(case_scores(mask(case["truth"]), mask(case["pred"]), 1,
                             hd95_form=form)["hd95"][0])


def test_the_reference_was_recorded_with_monai_1_6_1_on_46_pairs():
    assert REFERENCE["monai"] == "1.6.1"
    assert len(CASES) == 46


@pytest.mark.parametrize("name", list(CASES))
def test_directed_max_is_monai_and_pooled_is_medpy(name):
    case = CASES[name]
    # MONAI returns float32: agreement to its precision.
    assert hd95_of(case, "directed_max") == pytest.approx(case["monai_hd95"], rel=1e-6, abs=1e-6)
    assert hd95_of(case, "pooled") == pytest.approx(case["medpy_hd95"], abs=1e-9)


def test_the_two_forms_differ_by_25_pixels_on_a_far_blob_and_neither_bounds_the_other():
    far = CASES["far blob"]  # a 40x40 square; the prediction adds a 4x4 blob,
    # diagonally beyond its corner, 16 empty rows and columns away
    assert far["monai_hd95"] == pytest.approx(25.2374, abs=1e-4)
    assert far["medpy_hd95"] == 0.0
    # The directed maximum is not always the larger: linear interpolation between order
    # statistics lets the pooled percentile pass both directed ones.
    above = CASES["pooled above directed max"]
    assert above["medpy_hd95"] == pytest.approx(1.9707107, abs=1e-6)
    assert above["monai_hd95"] == pytest.approx(1.7656854, abs=1e-6)
    assert hd95_of(above, "pooled") > hd95_of(above, "directed_max")
    # Directed maximum at least each direction's P95, at most the Hausdorff distance.
    for case in REFERENCE["cases"]:
        assert case["monai_hd95_pred_to_truth"] <= case["monai_hd95"] <= case["monai_hd"]


def test_monai_gives_nan_not_inf_for_hd95_when_a_mask_is_empty():
    # What MONAI 1.6.1 returned (recorded): each directed distance set is all inf, and the
    # linear interpolation of the 95th percentile computes inf - inf = NaN. Only the plain
    # Hausdorff distance (percentile=None, a max) is inf. Both empty: NaN.
    on_empty = REFERENCE["monai_on_empty"]
    assert on_empty["empty prediction"] == {"hd95": "nan", "hd": "inf"}
    assert on_empty["empty truth"] == {"hd95": "nan", "hd": "inf"}
    assert on_empty["both empty"] == {"hd95": "nan", "hd": "nan"}
    # This project: the worst distance (the image diagonal) where one is empty, NaN where both.
    some, empty = np.zeros((1, 8, 8), np.int64), np.zeros((1, 8, 8), np.int64)
    some[0, 2:5, 2:5] = 1
    for form in ("directed_max", "pooled"):
        assert case_scores(some, empty, 1, hd95_form=form)["hd95"][0] == math.hypot(7, 7)
        assert case_scores(empty, some, 1, hd95_form=form)["hd95"][0] == math.hypot(7, 7)
        assert np.isnan(case_scores(empty, empty, 1, hd95_form=form)["hd95"][0])


def test_hd95_matches_monai_live_on_random_masks():
    pytest.importorskip("torch", reason="torch (for MONAI) is not a project dependency")
    pytest.importorskip("monai", reason="MONAI is not a project dependency")
    import torch
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays
    from monai.metrics import compute_hausdorff_distance

    def monai_hd95(truth: np.ndarray, pred: np.ndarray) -> float:
        y = torch.tensor(np.stack([~truth, truth])[None], dtype=torch.float32)
        y_pred = torch.tensor(np.stack([~pred, pred])[None], dtype=torch.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # empty-mask warnings
            return float(compute_hausdorff_distance(y_pred, y, percentile=95)[0, 0])

    pairs = st.tuples(st.integers(1, 14), st.integers(1, 14)).flatmap(
        lambda shape: st.tuples(arrays(np.bool_, shape), arrays(np.bool_, shape)))

    @settings(max_examples=200, deadline=None)
    @given(pairs)
    def agree(pair):
        truth, pred = pair
        if not truth.any() or not pred.any():
            return  # the empty-class rule differs on purpose: see the test above
        ours = case_scores(truth[None].astype(np.int64), pred[None].astype(np.int64), 1)
        assert ours["hd95"][0] == pytest.approx(monai_hd95(truth, pred), rel=1e-6, abs=1e-6)

    agree()
