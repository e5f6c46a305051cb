"""Per-case segmentation metrics: Dice, IoU, NSD and HD95 for each image and class.

Epoch metrics pool one confusion matrix over a whole split; these score every case
(image, or frame of a sequence) on its own, as Metrics Reloaded (Maier-Hein et al.
2024) and nnU-Net do, so a test set gives a distribution instead of one number.
NumPy and SciPy only.

Definitions, for a class c of one case with truth mask A and predicted mask B:

- ``dice`` = 2|A∩B| / (|A| + |B|); ``iou`` = |A∩B| / |A∪B|.
- Surfaces: the boundary pixels of a mask, i.e. its pixels with a 4-neighbour outside
  it or outside the image (the mask minus its erosion by the 3x3 cross, image border
  counted as background: medpy's and MONAI's convention). d(a, ∂B) is the Euclidean
  distance in pixels from a boundary pixel of A to the nearest boundary pixel of B
  (``scipy.ndimage.distance_transform_edt``).
- ``nsd``: normalised surface Dice at tolerance τ (Nikolov et al. 2021), the share of
  both boundaries lying within τ of the other:
  (#{a ∈ ∂A: d(a, ∂B) <= τ} + #{b ∈ ∂B: d(b, ∂A) <= τ}) / (|∂A| + |∂B|), as MONAI's
  ``compute_surface_dice`` counts boundary pixels.
- ``hd95``: the 95th percentile (linear interpolation, ``np.percentile``'s default) of
  surface distances, in one of two forms (``hd95_form``):

  - ``"directed_max"`` (default): max(P95{d(a, ∂B): a ∈ ∂A}, P95{d(b, ∂A): b ∈ ∂B}),
    the larger of the two directed 95th percentiles, as MONAI's
    ``compute_hausdorff_distance(percentile=95)`` (and Metrics Reloaded) computes it;
  - ``"pooled"``: P95 of both directed distance sets pooled into one, as medpy's ``hd95``.

  Neither bounds the other (a 5x7 pair where pooled exceeds directed_max is in the tests);
  on the same masks they can differ by tens of pixels. ``docs/case-metrics.md`` has more.

Empty-class rule (stated once, used everywhere):

- class absent from both truth and prediction: every metric is NaN; there is
  nothing to score, and a mean over cases skips it (Metrics Reloaded, MONAI
  ``ignore_empty``);
- class in only one of them: ``dice = iou = nsd = 0`` and ``hd95`` is the worst
  value it can take, the image diagonal sqrt((H-1)^2 + (W-1)^2) in pixels. A NaN
  there would drop the worst predictions from the mean and flatter the model
  (Metrics Reloaded recommends the worst possible distance; MONAI 1.6 gives NaN
  for HD95 there, and inf only for the plain Hausdorff distance, ``percentile=None``).
"""

from __future__ import annotations

import numpy as np

METRICS = ("dice", "iou", "nsd", "hd95")
HD95_FORMS = ("directed_max", "pooled")  # the first is the default
IGNORE = -1  # truth label of an ignored pixel (a dataset's ignore_index): scored nowhere
# 4-connectivity (scipy.ndimage.generate_binary_structure(2, 1)); SciPy's ndimage is
# imported where it is used: 0.18 s of CPU that ``import zoo`` (the spec check) need not pay.
_CROSS = np.array([[False, True, False], [True, True, True], [False, True, False]])
_CHUNK_PIXELS = 1 << 22  # masks scored at once (cases x classes x H x W): bounds memory


def boundary(masks: np.ndarray) -> np.ndarray:
    """Boundary pixels of binary masks (..., H, W): each mask minus its own erosion."""
    from scipy import ndimage

    cross = _CROSS.reshape((1,) * (masks.ndim - 2) + _CROSS.shape)  # never across masks
    return masks & ~ndimage.binary_erosion(masks, structure=cross, border_value=0)


def distance_to(borders: np.ndarray) -> np.ndarray:
    """Per mask (M, H, W), the distance in pixels from every pixel to that mask's border."""
    # distance_transform_edt measures the distance to the nearest zero: zero on the border.
    # One 2-D transform per mask: a 3-D transform with a large spacing between masks
    # gives the same numbers but runs several times slower.
    from scipy import ndimage

    out = np.empty(borders.shape, np.float64)
    for i, border in enumerate(borders):
        out[i] = ndimage.distance_transform_edt(~border)
    return out


def surface_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances (pixels) from each boundary pixel of ``a`` to ∂b, and from ∂b to ∂a.

    Args:
        a, b: binary masks (H, W), both non-empty.

    Returns:
        ``(d_ab, d_ba)``: 1-D float arrays of length |∂a| and |∂b|.
    """
    border_a, border_b = boundary(a[None]), boundary(b[None])
    return distance_to(border_b)[border_a], distance_to(border_a)[border_b]


def _percentile_rows(values: np.ndarray, present: np.ndarray, q: float) -> np.ndarray:
    """``np.percentile(row[present_row], q)`` (linear interpolation) for every row at once."""
    counts = present.sum(1)
    ordered = np.sort(np.where(present, values, np.inf), axis=1)
    position = q / 100 * (counts - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, counts - 1)
    take = np.take_along_axis
    lo_v, hi_v = take(ordered, low[:, None], 1)[:, 0], take(ordered, high[:, None], 1)[:, 0]
    return lo_v + (position - low) * (hi_v - lo_v)


def _surface_scores(t: np.ndarray, p: np.ndarray, tolerance: float, hd95_form: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    """NSD and HD95 (M,) of mask pairs (M, H, W), every mask non-empty."""
    border_t, border_p = boundary(t), boundary(p)
    to_p, to_t = distance_to(border_p), distance_to(border_t)
    within = (((to_p <= tolerance) & border_t).sum((1, 2))
              + ((to_t <= tolerance) & border_p).sum((1, 2)))
    nsd = within / (border_t.sum((1, 2)) + border_p.sum((1, 2)))
    m = len(t)
    t_to_p, p_to_t = to_p.reshape(m, -1), to_t.reshape(m, -1)
    on_t, on_p = border_t.reshape(m, -1), border_p.reshape(m, -1)
    if hd95_form == "pooled":  # both directed distance sets side by side, one percentile
        hd95 = _percentile_rows(np.concatenate([t_to_p, p_to_t], axis=1),
                                np.concatenate([on_t, on_p], axis=1), 95)
    else:
        hd95 = np.maximum(_percentile_rows(t_to_p, on_t, 95), _percentile_rows(p_to_t, on_p, 95))
    return nsd, hd95


def truth_labels(y: np.ndarray) -> np.ndarray:
    """Truth label maps (..., H, W) of targets (..., H, W, K): argmax for K >= 2, with
    ``IGNORE`` where the target row is all zero; ``y >= 0.5`` for K == 1."""
    y = np.asarray(y)
    if y.shape[-1] == 1:
        return (y[..., 0] >= 0.5).astype(np.int32)
    return np.where(y.sum(-1) > 0, y.argmax(-1), IGNORE).astype(np.int32)


def _check(truth: np.ndarray, pred: np.ndarray, n_classes: int, tolerance: float,
           hd95_form: str) -> tuple[np.ndarray, np.ndarray]:
    truth, pred = np.asarray(truth), np.asarray(pred)
    if hd95_form not in HD95_FORMS:
        raise ValueError(f"hd95_form={hd95_form!r} must be one of {', '.join(HD95_FORMS)}")
    if truth.shape != pred.shape or truth.ndim != 3:
        raise ValueError(f"truth {truth.shape} and pred {pred.shape} must be label maps of "
                         f"one shape (N, H, W)")
    if n_classes < 1:
        raise ValueError(f"n_classes={n_classes} must be at least 1")
    if not tolerance >= 0:
        raise ValueError(f"tolerance={tolerance} must be >= 0 (pixels)")
    top = max(n_classes, 2)  # n_classes == 1: 0/1 maps
    for name, labels in (("truth", truth), ("pred", pred)):
        if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
            raise ValueError(f"{name} must hold integer labels, got dtype {labels.dtype}")
        low = IGNORE if name == "truth" else 0
        if labels.size and (labels.min() < low or labels.max() >= top):
            raise ValueError(f"{name} holds labels {int(labels.min())}..{int(labels.max())}; "
                             f"allowed 0..{top - 1} for n_classes={n_classes}")
    return truth, pred


def case_scores(truth: np.ndarray, pred: np.ndarray, n_classes: int,
                tolerance: float = 1.0, *, hd95_form: str = "directed_max"
                ) -> dict[str, np.ndarray]:
    """Dice, IoU, NSD and HD95 of every case and class.

    Args:
        truth, pred: integer label maps (N, H, W). Truth pixels labelled ``IGNORE``
            (-1) are left out of every score, the prediction there included (see
            ``truth_labels``). For ``n_classes == 1`` they are
            0/1 maps and only class 1 (the foreground) is scored; for K >= 2 every
            class 0..K-1 is scored (background included; drop class 0 if unwanted).
            Sequences are scored as N*T frames: reshape them to (N*T, H, W).
        n_classes: K, as the model's output.
        tolerance: τ of the NSD, in pixels.
        hd95_form: ``"directed_max"`` (MONAI, Metrics Reloaded) or ``"pooled"`` (medpy);
            see the module docstring.

    Returns:
        Equal-length 1-D arrays, one entry per (case, class), case-major:
        ``case`` (int, 0..N-1), ``class_index`` (int; 1 for ``n_classes == 1``),
        ``dice``, ``iou``, ``nsd``, ``hd95`` (float64; the empty-class rule of the
        module docstring: NaN where the class is in neither truth nor prediction).

    Raises:
        ValueError: shapes that differ or are not (N, H, W), labels outside the
            classes, a negative tolerance, an unknown ``hd95_form``.
    """
    truth, pred = _check(truth, pred, n_classes, tolerance, hd95_form)
    n, height, width = truth.shape
    classes = np.array([1]) if n_classes == 1 else np.arange(n_classes)
    scores = {name: np.full((n, len(classes)), np.nan) for name in METRICS}
    step = max(1, _CHUNK_PIXELS // max(1, len(classes) * height * width))
    for start in range(0, n, step):
        cases = slice(start, start + step)
        chunk = _chunk_scores(truth[cases], pred[cases], classes, tolerance, hd95_form)
        for name in METRICS:
            scores[name][cases] = chunk[name]
    return {
        "case": np.repeat(np.arange(n), len(classes)),
        "class_index": np.tile(classes, n),
        **{name: scores[name].ravel() for name in METRICS},
    }


def _chunk_scores(truth: np.ndarray, pred: np.ndarray, classes: np.ndarray,
                  tolerance: float, hd95_form: str) -> dict[str, np.ndarray]:
    """``case_scores``' metrics (n, K) of a few cases."""
    height, width = truth.shape[1:]
    # (n, K, H, W) one-hot masks; counts for Dice and IoU in one go.
    t = truth[:, None] == classes[None, :, None, None]
    p = (pred[:, None] == classes[None, :, None, None]) & (truth != IGNORE)[:, None]
    inter = (t & p).sum((2, 3)).astype(np.float64)
    t_sum, p_sum = t.sum((2, 3)).astype(np.float64), p.sum((2, 3)).astype(np.float64)
    union = t_sum + p_sum - inter
    both_empty = union == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(both_empty, np.nan, 2 * inter / (t_sum + p_sum))
        iou = np.where(both_empty, np.nan, inter / union)
    # One side empty: no surface within tolerance, and the worst distance there is.
    nsd = np.where(both_empty, np.nan, 0.0)
    hd95 = np.where(both_empty, np.nan, np.hypot(height - 1, width - 1))
    both = (t_sum > 0) & (p_sum > 0)
    if both.any():
        nsd[both], hd95[both] = _surface_scores(t[both], p[both], tolerance,
                                                     hd95_form)
    return {"dice": dice, "iou": iou, "nsd": nsd, "hd95": hd95}
