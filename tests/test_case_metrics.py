"""zoo.case_metrics: per-case Dice, IoU, NSD and HD95 against hand-worked cases and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from zoo.case_metrics import METRICS, case_scores


def square(size: int, rows: slice, cols: slice) -> np.ndarray:
    """A (1, size, size) 0/1 label map with a rectangle of ones."""
    labels = np.zeros((1, size, size), np.int64)
    labels[0, rows, cols] = 1
    return labels


def scores_of(truth, pred, n_classes=1, tolerance=1.0) -> dict[str, float]:
    """The four metrics of the only (case, class) row."""
    result = case_scores(truth, pred, n_classes, tolerance)
    assert len(result["dice"]) == 1
    return {name: float(result[name][0]) for name in ("dice", "iou", "nsd", "hd95")}


def test_a_square_shifted_by_two_pixels_matches_the_hand_worked_values():
    # A 4x4 square and the same square two columns to the right, on a 10x10 image.
    # Overlap 4x2 = 8 pixels: Dice = 2*8/(16+16) = 0.5, IoU = 8/(16+16-8) = 1/3.
    # Each boundary has 12 pixels (the 4x4 square minus its 2x2 inside). From the
    # truth's boundary to the prediction's: its left column (4 pixels) lies 2 away,
    # (2,3), (5,3) and the right column's (3,5), (4,5) lie 1 away, the other 4 are on
    # the prediction's boundary (0). The other direction is the mirror image. Each
    # direction: 4 zeros, 4 ones, 4 twos, P95 at position 0.95 * 11 = 10.45 between two
    # twos: HD95 = 2 (pooled too: 8 of each, position 21.85, also between twos). Within
    # 1 pixel lie 16 of 24 boundary pixels: NSD = 2/3 (at tolerance 2, all: NSD = 1).
    truth, pred = square(10, slice(2, 6), slice(2, 6)), square(10, slice(2, 6), slice(4, 8))
    got = scores_of(truth, pred)
    assert got == pytest.approx({"dice": 0.5, "iou": 1 / 3, "nsd": 2 / 3, "hd95": 2.0})
    assert scores_of(truth, pred, tolerance=2.0)["nsd"] == pytest.approx(1.0)
    # Shifted by one: overlap 12, Dice 0.75, IoU 0.6; distances 12 zeros, 12 ones.
    one = scores_of(truth, square(10, slice(2, 6), slice(3, 7)), tolerance=0.5)
    assert one == pytest.approx({"dice": 0.75, "iou": 0.6, "nsd": 0.5, "hd95": 1.0})
    # Perfect prediction.
    assert scores_of(truth, truth) == pytest.approx({"dice": 1, "iou": 1, "nsd": 1, "hd95": 0})


def test_an_empty_prediction_scores_zero_and_the_worst_distance():
    truth, empty = square(10, slice(2, 6), slice(2, 6)), np.zeros((1, 10, 10), np.int64)
    got = scores_of(truth, empty)
    diagonal = math.hypot(9, 9)  # the largest distance between two pixels of a 10x10 image
    assert got == pytest.approx({"dice": 0.0, "iou": 0.0, "nsd": 0.0, "hd95": diagonal})
    # The same when only the prediction has the class.
    assert scores_of(empty, truth) == pytest.approx(got)


def test_a_class_in_neither_truth_nor_prediction_is_nan():
    truth = np.zeros((2, 6, 6), np.int64)
    pred = np.zeros((2, 6, 6), np.int64)
    truth[0, :3], pred[0, :3] = 1, 1  # case 0: classes 0 and 1, perfect; class 2 absent
    pred[1, 0, 0] = 2  # case 1: class 1 absent from both, class 2 only predicted
    result = case_scores(truth, pred, 3)
    np.testing.assert_array_equal(result["case"], [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(result["class_index"], [0, 1, 2, 0, 1, 2])
    for name in ("dice", "iou", "nsd", "hd95"):
        assert np.isnan(result[name][[2, 4]]).all(), name
    np.testing.assert_allclose(result["dice"][[0, 1, 5]], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(result["hd95"][[0, 1, 5]], [0.0, 0.0, math.hypot(5, 5)])
    # Background of case 1: 36 truth pixels, 35 predicted, all shared.
    assert result["dice"][3] == pytest.approx(70 / 71)
    assert result["iou"][3] == pytest.approx(35 / 36)


def test_single_pixels():
    truth = square(7, slice(3, 4), slice(3, 4))
    assert scores_of(truth, truth) == pytest.approx({"dice": 1, "iou": 1, "nsd": 1, "hd95": 0})
    # Two columns apart: no overlap, each surface (one pixel) 2 away from the other.
    apart = square(7, slice(3, 4), slice(5, 6))
    assert scores_of(truth, apart) == pytest.approx({"dice": 0, "iou": 0, "nsd": 0, "hd95": 2})
    assert scores_of(truth, apart, tolerance=2.0)["nsd"] == 1.0
    # A diagonal neighbour is sqrt(2) away.
    diagonal = square(7, slice(4, 5), slice(4, 5))
    assert scores_of(truth, diagonal)["hd95"] == pytest.approx(math.sqrt(2))


def border_points(mask: np.ndarray) -> np.ndarray:
    """(row, col) of the pixels of ``mask`` with a 4-neighbour outside it or the image."""
    padded = np.pad(mask, 1)  # outside the image counts as background
    inside = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return np.argwhere(mask & ~inside).astype(np.float64)


def brute_force(truth: np.ndarray, pred: np.ndarray, tolerance: float) -> dict[str, float]:
    """The metrics of two non-empty masks (H, W) by definition, from all pairwise distances."""
    a, b = border_points(truth), border_points(pred)
    pairwise = cdist(a, b)
    d_ab, d_ba = pairwise.min(1), pairwise.min(0)
    inter = (truth & pred).sum()
    return {
        "dice": 2 * inter / (truth.sum() + pred.sum()),
        "iou": inter / (truth | pred).sum(),
        "nsd": ((d_ab <= tolerance).sum() + (d_ba <= tolerance).sum()) / (len(a) + len(b)),
        "hd95": max(np.percentile(d_ab, 95), np.percentile(d_ba, 95)),
        "hd95_pooled": np.percentile(np.concatenate([d_ab, d_ba]), 95),
        "hausdorff": max(d_ab.max(), d_ba.max()),
    }


@pytest.mark.parametrize("tolerance", [0.0, 1.0, 2.5])
def test_random_masks_agree_with_a_brute_force_pairwise_implementation(tolerance):
    rng = np.random.default_rng(7)
    # Blobby labels: random noise smoothed by a majority over 3x3, three classes.
    noise = rng.integers(0, 3, size=(12, 16, 20))
    truth = noise.copy()
    truth[:, 1:-1, 1:-1] = np.where(rng.random((12, 14, 18)) < 0.8, noise[:, 1:-1, 1:-1], 0)
    pred = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 3, truth.shape))
    result = case_scores(truth, pred, 3, tolerance)
    pooled = case_scores(truth, pred, 3, tolerance, hd95_form="pooled")["hd95"]
    checked = differ = 0
    for row, (case, k) in enumerate(zip(result["case"], result["class_index"], strict=True)):
        t, p = truth[case] == k, pred[case] == k
        if not t.any() or not p.any():
            continue
        expected = brute_force(t, p, tolerance)
        for name in METRICS:  # hd95: the default form, directed_max
            assert result[name][row] == pytest.approx(expected[name], abs=1e-9), (case, k, name)
        assert pooled[row] == pytest.approx(expected["hd95_pooled"], abs=1e-9), (case, k)
        checked += 1
        differ += abs(expected["hd95"] - expected["hd95_pooled"]) > 1e-9
    assert checked == 36
    assert differ > 0  # the two forms were told apart


def test_a_far_false_positive_moves_the_directed_form_and_not_the_pooled_one():
    # Truth: a 1-pixel line, row 1, columns 0..19 of a 3x32 image; every pixel of it is
    # boundary. Prediction: the same line plus two far pixels at columns 30 and 31.
    # truth -> pred: 20 zeros. pred -> truth: 20 zeros, 11 and 12 (to column 19).
    # Directed P95 of pred -> truth (22 values): position 0.95 * 21 = 19.95, between
    # sorted[19] = 0 and sorted[20] = 11: 0.95 * 11 = 10.45; the maximum with 0 is 10.45.
    # Pooled (42 values, 40 zeros): position 0.95 * 41 = 38.95, between two zeros: 0.
    truth = np.zeros((1, 3, 32), np.int64)
    truth[0, 1, :20] = 1
    pred = truth.copy()
    pred[0, 1, 30:32] = 1
    assert scores_of(truth, pred)["hd95"] == pytest.approx(10.45)
    assert case_scores(truth, pred, 1, hd95_form="pooled")["hd95"][0] == 0.0
    # Symmetric in truth and prediction, both forms.
    assert scores_of(pred, truth)["hd95"] == pytest.approx(10.45)
    assert case_scores(pred, truth, 1, hd95_form="pooled")["hd95"][0] == 0.0


def test_binary_maps_score_only_the_foreground_and_bad_input_is_refused():
    truth = np.zeros((3, 8, 8), bool)
    truth[:, 2:5, 2:5] = True
    result = case_scores(truth, truth, 1)
    np.testing.assert_array_equal(result["class_index"], [1, 1, 1])
    np.testing.assert_array_equal(result["dice"], [1, 1, 1])
    with pytest.raises(ValueError, match=r"pred \(3, 8, 7\)"):
        case_scores(truth, truth[:, :, :7], 1)
    with pytest.raises(ValueError, match="labels 0..2; allowed 0..1 for n_classes=1"):
        case_scores(truth.astype(int) * 2, truth, 1)
    with pytest.raises(ValueError, match="tolerance=-1"):
        case_scores(truth, truth, 1, tolerance=-1)
    with pytest.raises(ValueError, match="hd95_form='medpy' must be one of directed_max, pooled"):
        case_scores(truth, truth, 1, hd95_form="medpy")


def test_a_test_set_of_100_cases_and_11_classes_is_scored_whole():
    # Speed is measured in tests/perf/case_metrics.py, not asserted here (shared machines).
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 11, size=(100, 32, 32))
    pred = np.where(rng.random(truth.shape) < 0.8, truth, rng.integers(0, 11, truth.shape))
    result = case_scores(truth, pred, 11)
    assert len(result["dice"]) == 1100
    assert np.array_equal(result["case"], np.repeat(np.arange(100), 11))
    assert np.isfinite(result["dice"]).all()  # every class is present in every case here


def test_the_boundary_s_cross_is_scipys_4_connectivity():
    from scipy import ndimage

    from zoo.case_metrics import _CROSS

    expected = ndimage.generate_binary_structure(2, 1)
    np.testing.assert_array_equal(_CROSS, expected)
    assert _CROSS.dtype == expected.dtype
