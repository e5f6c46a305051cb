"""zoo.case_metrics where the hand-worked and brute-force tests do not reach: truth labels,
ignored pixels, the input checks word for word, empty inputs, scoring in chunks and the
surface helpers. Each test names what it pins; ``tests/mutation/run.py --groups
case_metrics`` shows the mutants they kill (docs/mutation.md)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from zoo import case_metrics
from zoo.case_metrics import IGNORE, case_scores, surface_distances, truth_labels


def test_truth_labels_of_one_channel_threshold_at_one_half_and_of_several_take_the_argmax():
    # One channel: >= 0.5 is the foreground, exactly 0.5 included.
    y = np.array([[[[0.0], [0.49]], [[0.5], [1.0]]]], np.float32)
    labels = truth_labels(y)
    assert labels.dtype == np.int32 and labels.tolist() == [[[0, 0], [1, 1]]]
    # Several channels: the argmax; an all-zero row is ignored (-1), a row with any
    # weight is not, even a small one.
    y = np.array([[[[0, 0, 1], [0, 0, 0]], [[0.2, 0.7, 0.1], [0, 0.01, 0]]]], np.float32)
    labels = truth_labels(y)
    assert labels.dtype == np.int32 and labels.tolist() == [[[2, IGNORE], [1, 1]]]
    assert IGNORE == -1


def test_an_ignored_truth_pixel_is_scored_nowhere_whatever_is_predicted_there():
    # Class 1 is a 2x2 square; an ignored strip on the right where the prediction puts
    # class 1 too. Counting the strip would add 3 false positives to class 1.
    truth = np.zeros((1, 6, 6), np.int64)
    truth[0, 1:3, 1:3] = 1
    truth[0, :3, 5] = IGNORE
    pred = np.where(truth == IGNORE, 1, truth)
    result = case_scores(truth, pred, 2)
    np.testing.assert_array_equal(result["dice"], [1.0, 1.0])
    np.testing.assert_array_equal(result["iou"], [1.0, 1.0])
    np.testing.assert_array_equal(result["nsd"], [1.0, 1.0])
    np.testing.assert_array_equal(result["hd95"], [0.0, 0.0])
    # A truth of ignored pixels only: nothing to score in any class.
    only = case_scores(np.full((1, 3, 3), IGNORE), np.ones((1, 3, 3), np.int64), 2)
    assert np.isnan(only["dice"]).all() and np.isnan(only["hd95"]).all()


def test_bad_input_is_refused_with_its_own_message():
    good = np.zeros((1, 4, 4), np.int64)
    with pytest.raises(ValueError, match=r"^truth \(4, 4\) and pred \(4, 4\) must be label "
                                         r"maps of one shape \(N, H, W\)$"):
        case_scores(good[0], good[0], 2)
    with pytest.raises(ValueError, match=r"^n_classes=0 must be at least 1$"):
        case_scores(good, good, 0)
    with pytest.raises(ValueError, match=r"^tolerance=nan must be >= 0 \(pixels\)$"):
        case_scores(good, good, 2, tolerance=math.nan)
    with pytest.raises(ValueError, match=r"^truth must hold integer labels, got dtype "
                                         r"float64$"):
        case_scores(good.astype(float), good, 2)
    with pytest.raises(ValueError, match=r"^pred must hold integer labels, got dtype "
                                         r"float32$"):
        case_scores(good, good.astype(np.float32), 2)
    # The prediction may not use the ignore label; the truth may.
    with pytest.raises(ValueError, match=r"^pred holds labels -1\.\.0; allowed 0\.\.2 for "
                                         r"n_classes=3$"):
        case_scores(good, good - np.eye(4, dtype=np.int64)[None], 3)
    with pytest.raises(ValueError, match=r"^truth holds labels 0\.\.3; allowed 0\.\.2 for "
                                         r"n_classes=3$"):
        case_scores(good + np.eye(4, dtype=np.int64)[None] * 3, good, 3)
    with pytest.raises(ValueError, match=r"^hd95_form='x' must be one of directed_max, "
                                         r"pooled$"):
        case_scores(good, good, 2, hd95_form="x")
    # The limits themselves are allowed: tolerance 0, label K-1, boolean maps.
    top = case_scores(good + 2, good + 2, 3, tolerance=0.0)
    assert top["dice"].tolist()[2] == 1.0 and np.isnan(top["dice"][:2]).all()
    assert case_scores(good.astype(bool), good.astype(bool), 1)["class_index"].tolist() == [1]


def test_no_cases_give_empty_columns():
    empty = np.zeros((0, 4, 4), np.int64)
    result = case_scores(empty, empty, 3)
    assert set(result) == {"case", "class_index", "dice", "iou", "nsd", "hd95"}
    assert all(len(values) == 0 for values in result.values())


def test_scores_in_several_chunks_equal_each_case_scored_alone(monkeypatch):
    # 7 cases of 2 classes on 8x8: with chunks of 3 cases (384 pixels: 3 x 2 x 8 x 8) the
    # last chunk is short (1 case); each case's row must equal the case scored on its own.
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, size=(7, 8, 8))
    pred = np.where(rng.random(truth.shape) < 0.75, truth, 1 - truth)
    pred[4] = 0  # class 1 absent from case 4's prediction: the empty-class rule in a chunk
    alone = [case_scores(truth[i:i + 1], pred[i:i + 1], 2) for i in range(7)]
    monkeypatch.setattr(case_metrics, "_CHUNK_PIXELS", 3 * 2 * 8 * 8)
    chunked = case_scores(truth, pred, 2)
    np.testing.assert_array_equal(chunked["case"], np.repeat(np.arange(7), 2))
    np.testing.assert_array_equal(chunked["class_index"], np.tile([0, 1], 7))
    for name in ("dice", "iou", "nsd", "hd95"):
        expected = np.concatenate([one[name] for one in alone])
        np.testing.assert_array_equal(chunked[name], expected, err_msg=name)
    assert chunked["hd95"][9] == math.hypot(7, 7)  # case 4, class 1: the image diagonal


def test_surface_distances_of_a_square_and_its_shift_by_hand():
    # 3x3 squares, the second one column to the right: 8 boundary pixels each (all but the
    # centre). From the first square's boundary: its left column (3 pixels) and its right
    # column's middle (the second square's centre) are 1 away from the second's boundary,
    # the other 4 lie on it. The other direction mirrors it.
    a = np.zeros((7, 7), bool)
    a[2:5, 1:4] = True
    b = np.roll(a, 1, axis=1)
    d_ab, d_ba = surface_distances(a, b)
    assert sorted(d_ab.tolist()) == [0.0] * 4 + [1.0] * 4
    assert sorted(d_ba.tolist()) == [0.0] * 4 + [1.0] * 4
    # The boundary of a 3x3 square is its 8 outer pixels; at the image border too.
    corner = np.zeros((1, 4, 4), bool)
    corner[0, :3, :3] = True
    ring = case_metrics.boundary(corner)[0]
    assert ring.sum() == 8 and not ring[1, 1]


def test_percentile_rows_is_numpys_linear_percentile_of_each_rows_present_values():
    values = np.array([[4.0, 1.0, 9.0, 2.0, 7.0], [3.0, 5.0, 0.0, 8.0, 6.0]])
    present = np.array([[1, 1, 1, 1, 0], [0, 1, 1, 1, 1]], bool)
    for q in (0, 37.5, 95, 100):
        got = case_metrics._percentile_rows(values, present, q)
        expected = [np.percentile(row[keep], q) for row, keep in zip(values, present,
                                                                      strict=True)]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # One value present: its own value at every q.
    single = case_metrics._percentile_rows(np.array([[2.0, 5.0]]), np.array([[0, 1]], bool),
                                           95)
    assert single.tolist() == [5.0]


def test_each_chunk_holds_at_most_the_pixel_budget_and_every_case_is_scored_once(
        monkeypatch):
    # The chunk size bounds memory: record the cases each call to _chunk_scores gets
    # (the real function runs; its results are checked above).
    sizes: list[int] = []
    real = case_metrics._chunk_scores

    def recording(truth, *args):
        sizes.append(len(truth))
        return real(truth, *args)

    monkeypatch.setattr(case_metrics, "_chunk_scores", recording)
    labels = np.random.default_rng(1).integers(0, 2, size=(7, 8, 8))
    monkeypatch.setattr(case_metrics, "_CHUNK_PIXELS", 3 * 2 * 8 * 8)  # 3 cases of 2 classes
    case_scores(labels, labels, 2)
    assert sizes == [3, 3, 1]
    sizes.clear()
    monkeypatch.setattr(case_metrics, "_CHUNK_PIXELS", 100)  # less than one case: one each
    case_scores(labels[:3], labels[:3], 2)
    assert sizes == [1, 1, 1]
    sizes.clear()
    monkeypatch.setattr(case_metrics, "_CHUNK_PIXELS", 3)  # 1x1 images, one class: 3 each
    case_scores(np.ones((5, 1, 1), np.int64), np.ones((5, 1, 1), np.int64), 1)
    assert sizes == [3, 2]


def test_a_class_absent_from_both_maps_is_scored_without_a_warning():
    # 0/0 for Dice and IoU there is the empty-class rule's NaN, not a numerical accident.
    truth = np.zeros((1, 4, 4), np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = case_scores(truth, truth, 3)
    assert np.isnan(result["dice"][1:]).all() and result["dice"][0] == 1.0
