"""Segmentation and next-frame metrics, stateful over the batches of an epoch.

Every metric is a ``keras.metrics.Metric`` registered serialisable (package ``zoo``)
whose ``name`` is its registry name, so Keras history keys read ``mean_iou``,
``val_mean_iou``, ``dice_coef``, ``pixel_accuracy``, ``iou_class_3``, ``psnr``, ``ssim``.

Segmentation metrics (``mean_iou``, ``dice_coef``, ``pixel_accuracy``, ``iou_class``)
work on hard labels: the argmax of the last axis for ``K >= 2``, a 0.5 threshold for
``K == 1`` (then two classes, 0 background and 1 foreground). They accumulate one
confusion matrix over every pixel of every batch and compute the score from it at
the end, so an epoch's value is the score of the whole epoch's pixels, not a mean
of per-batch scores (which would depend on the batch size).

Next-frame metrics (``psnr``, ``ssim``) compare predicted and true frames
``(H, W, C)`` in ``[0, max_val]``; their epoch value is the mean over frames.

Inputs are images ``(B, H, W, K)`` or sequences ``(B, T, H, W, K)``.
``sample_weight`` of shape ``(B,)`` weights whole samples (0 ignores a sample, as
for the Ladder network's unlabelled samples); any shape that broadcasts to the
pixels ``(B, H, W)`` / ``(B, T, H, W)`` is accepted too. For ``K >= 2`` a pixel whose
``y_true`` row is all zero is ignored (a dataset's ``ignore_index``): it adds nothing to
the confusion matrix, whatever is predicted there.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from zoo.registry import Registry

METRICS: Registry[type[keras.metrics.Metric]] = Registry("metric")

TASKS = ("segmentation", "next_frame")

# PSNR of two identical frames is infinite; the MSE is floored here, capping PSNR
# at 10 * log10(max_val**2 / 1e-10) = 100 dB for max_val 1, so epoch means stay finite.
MIN_MSE = 1e-10


def _check_n_classes(n_classes: Any, where: str) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
        raise ValueError(f"{where}: n_classes must be an integer >= 1, got {n_classes!r}")
    return n_classes


def _broadcast_weight(sample_weight: Any, shape: Any) -> Any:
    """``sample_weight`` (``(B,)`` or broadcastable) as a float32 tensor of ``shape``."""
    weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
    while len(weight.shape) < len(shape):
        weight = ops.expand_dims(weight, -1)
    return ops.broadcast_to(weight, shape)


class _ConfusionMatrixMetric(keras.metrics.Metric):
    """Accumulates the (true, predicted) confusion matrix over batches.

    Subclasses turn ``self.confusion`` (rows: truth, columns: prediction) into a
    score in ``result``.
    """

    def __init__(self, n_classes: int, name: str, dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.n_classes = _check_n_classes(n_classes, name)
        # A sigmoid output (K == 1) has two labels: background and foreground.
        self.n_labels = 2 if self.n_classes == 1 else self.n_classes
        self.confusion = self.add_variable(
            shape=(self.n_labels, self.n_labels), initializer="zeros", name="confusion"
        )

    def _labels(self, y: Any) -> Any:
        y = ops.convert_to_tensor(y)
        if y.shape[-1] != self.n_classes:
            raise ValueError(
                f"{self.name}: tensors have {y.shape[-1]} classes on the last axis, "
                f"the metric was built for n_classes={self.n_classes}"
            )
        if self.n_classes == 1:
            return ops.cast(y[..., 0] > 0.5, "int32")
        return ops.cast(ops.argmax(y, axis=-1), "int32")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add a batch: ``y_true``, ``y_pred`` ``(B, [T,] H, W, K)``; weight ``(B,)``."""
        truth = self._labels(y_true)
        prediction = self._labels(y_pred)
        truth_hot = ops.one_hot(ops.reshape(truth, (-1,)), self.n_labels, dtype="float32")
        prediction_hot = ops.one_hot(ops.reshape(prediction, (-1,)), self.n_labels, dtype="float32")
        weight = None
        if self.n_classes > 1:
            # An all-zero target row marks an ignored pixel (its argmax would say class 0).
            weight = ops.cast(ops.sum(ops.convert_to_tensor(y_true), axis=-1) > 0, "float32")
        if sample_weight is not None:
            sample = _broadcast_weight(sample_weight, ops.shape(truth))
            weight = sample if weight is None else weight * sample
        if weight is not None:
            truth_hot = truth_hot * ops.reshape(weight, (-1, 1))
        batch = ops.matmul(ops.transpose(truth_hot), prediction_hot)
        self.confusion.assign_add(ops.cast(batch, self.confusion.dtype))

    def _per_class(self) -> tuple[Any, Any, Any]:
        """True positives, false positives and false negatives per class."""
        tp = ops.diagonal(self.confusion)
        fp = ops.sum(self.confusion, axis=0) - tp
        fn = ops.sum(self.confusion, axis=1) - tp
        return tp, fp, fn

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_classes": self.n_classes}


def _mean_over_present(scores: Any, present: Any) -> Any:
    """Mean of ``scores`` over the classes where ``present``; 0 if none is."""
    present = ops.cast(present, scores.dtype)
    return ops.sum(scores * present) / ops.maximum(ops.sum(present), 1.0)


def _safe_divide(numerator: Any, denominator: Any) -> Any:
    return ops.where(denominator > 0, numerator / ops.maximum(denominator, 1e-12), 0.0)


@METRICS.register("mean_iou", params={})
@keras.saving.register_keras_serializable(package="zoo")
class MeanIoU(_ConfusionMatrixMetric):
    """Mean intersection over union, TP / (TP + FP + FN), over the classes present.

    A class counts when it occurs in the truth or in the prediction of the
    accumulated pixels; a class absent from both is left out of the mean (its IoU
    is undefined), as in Keras' ``MeanIoU``.
    """

    def __init__(self, n_classes: int, name: str = "mean_iou", dtype: Any = None) -> None:
        super().__init__(n_classes, name=name, dtype=dtype)

    def result(self) -> Any:
        tp, fp, fn = self._per_class()
        union = tp + fp + fn
        return _mean_over_present(_safe_divide(tp, union), union > 0)


@METRICS.register("dice_coef", params={})
@keras.saving.register_keras_serializable(package="zoo")
class DiceCoef(_ConfusionMatrixMetric):
    """Mean Dice coefficient 2 TP / (2 TP + FP + FN) of hard predictions.

    Same counting as ``mean_iou`` (the epoch's pixels, classes present in truth
    or prediction); Dice = 2 IoU / (1 + IoU) per class.
    """

    def __init__(self, n_classes: int, name: str = "dice_coef", dtype: Any = None) -> None:
        super().__init__(n_classes, name=name, dtype=dtype)

    def result(self) -> Any:
        tp, fp, fn = self._per_class()
        denominator = 2.0 * tp + fp + fn
        return _mean_over_present(_safe_divide(2.0 * tp, denominator), denominator > 0)


@METRICS.register("pixel_accuracy", params={})
@keras.saving.register_keras_serializable(package="zoo")
class PixelAccuracy(_ConfusionMatrixMetric):
    """Fraction of pixels whose predicted class is the true class."""

    def __init__(self, n_classes: int, name: str = "pixel_accuracy", dtype: Any = None) -> None:
        super().__init__(n_classes, name=name, dtype=dtype)

    def result(self) -> Any:
        return _safe_divide(ops.trace(self.confusion), ops.sum(self.confusion))


@METRICS.register("iou_class", params={"class_id": None})
@keras.saving.register_keras_serializable(package="zoo")
class IoUClass(_ConfusionMatrixMetric):
    """IoU of one class, named ``iou_class_{class_id}``.

    0 while the class has occurred in neither truth nor prediction (as Keras'
    ``IoU`` does), so the value is always finite. For ``K == 1``, class 0 is the
    background and class 1 the foreground.

    Args:
        class_id: the class, ``0 <= class_id < n_classes`` (``< 2`` when ``K == 1``).
    """

    def __init__(
        self,
        n_classes: int,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        labels = 2 if _check_n_classes(n_classes, "iou_class") == 1 else n_classes
        valid = isinstance(class_id, int) and not isinstance(class_id, bool)
        if not valid or not 0 <= class_id < labels:
            raise ValueError(
                f"iou_class: class_id must be an integer in 0..{labels - 1} "
                f"for n_classes={n_classes}, got {class_id!r}"
            )
        self.class_id = class_id
        super().__init__(n_classes, name=name or f"iou_class_{class_id}", dtype=dtype)

    def result(self) -> Any:
        tp, fp, fn = self._per_class()
        k = self.class_id
        return _safe_divide(tp[k], tp[k] + fp[k] + fn[k])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_id": self.class_id}


class _FrameMeanMetric(keras.metrics.Metric):
    """Weighted mean over frames of a per-frame score, accumulated over batches."""

    def __init__(self, n_classes: int, max_val: float, name: str, dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.n_classes = _check_n_classes(n_classes, name)
        if max_val <= 0:
            raise ValueError(f"{name}: max_val must be > 0, got {max_val}")
        self.max_val = float(max_val)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def _frame_scores(self, y_true: Any, y_pred: Any) -> Any:
        """Scores of frames ``(N, H, W, C)`` → ``(N,)``."""
        raise NotImplementedError

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add a batch: ``(B, [T,] H, W, C)`` frames; weight ``(B,)``."""
        y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
        if len(y_pred.shape) not in (4, 5):
            raise ValueError(
                f"{self.name}: expected (B, H, W, C) or (B, T, H, W, C) frames, "
                f"got shape {tuple(y_pred.shape)}"
            )
        shape = ops.shape(y_pred)  # dynamic where the static size is unknown
        frame_shape = tuple(shape[-3:])
        frames_axes = shape[:-3]  # (B,) or (B, T)
        scores = self._frame_scores(
            ops.reshape(y_true, (-1, *frame_shape)), ops.reshape(y_pred, (-1, *frame_shape))
        )
        if sample_weight is None:
            weight = ops.ones_like(scores)
        else:
            weight = ops.reshape(_broadcast_weight(sample_weight, frames_axes), (-1,))
        self.total.assign_add(ops.cast(ops.sum(scores * weight), self.total.dtype))
        self.count.assign_add(ops.cast(ops.sum(weight), self.count.dtype))

    def result(self) -> Any:
        return _safe_divide(self.total, self.count)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_classes": self.n_classes, "max_val": self.max_val}


@METRICS.register("psnr", params={"max_val": 1.0})
@keras.saving.register_keras_serializable(package="zoo")
class PSNR(_FrameMeanMetric):
    """Peak signal-to-noise ratio 10 log10(max_val^2 / MSE) per frame, in dB.

    The MSE of a frame is floored at 1e-10 so identical frames give 100 dB
    (``max_val`` 1), not infinity.
    """

    def __init__(
        self, n_classes: int = 1, max_val: float = 1.0, name: str = "psnr", dtype: Any = None
    ) -> None:
        super().__init__(n_classes, max_val, name=name, dtype=dtype)

    def _frame_scores(self, y_true: Any, y_pred: Any) -> Any:
        mse = ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3))
        ratio = self.max_val**2 / ops.maximum(mse, MIN_MSE)
        return 10.0 * ops.log(ratio) / ops.log(10.0)


@METRICS.register(
    "ssim", params={"max_val": 1.0, "filter_size": 11, "filter_sigma": 1.5, "k1": 0.01, "k2": 0.03}
)
@keras.saving.register_keras_serializable(package="zoo")
class SSIM(_FrameMeanMetric):
    """Structural similarity (Wang et al. 2004) per frame, by ``tf.image.ssim``.

    Gaussian window ``filter_size`` x ``filter_size`` with ``filter_sigma``; the
    window shrinks to the frame when the frame is smaller. The SSIM map is
    averaged over the valid window positions and the channels.
    """

    def __init__(
        self,
        n_classes: int = 1,
        max_val: float = 1.0,
        filter_size: int = 11,
        filter_sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
        name: str = "ssim",
        dtype: Any = None,
    ) -> None:
        super().__init__(n_classes, max_val, name=name, dtype=dtype)
        if filter_size < 1 or filter_sigma <= 0:
            raise ValueError(
                f"ssim: filter_size must be >= 1 and filter_sigma > 0, "
                f"got {filter_size} and {filter_sigma}"
            )
        self.filter_size = int(filter_size)
        self.filter_sigma = float(filter_sigma)
        self.k1 = float(k1)
        self.k2 = float(k2)

    def _frame_scores(self, y_true: Any, y_pred: Any) -> Any:
        known = [int(d) for d in y_pred.shape[1:3] if d is not None]
        size = min([self.filter_size, *known])
        return tf.image.ssim(
            y_true,
            y_pred,
            max_val=self.max_val,
            filter_size=size,
            filter_sigma=self.filter_sigma,
            k1=self.k1,
            k2=self.k2,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filter_size": self.filter_size,
            "filter_sigma": self.filter_sigma,
            "k1": self.k1,
            "k2": self.k2,
        }


def get_metric(name: str, n_classes: int, **params: Any) -> keras.metrics.Metric:
    """A new metric by registry name, e.g. ``get_metric("iou_class", 4, class_id=2)``.

    Args:
        name: one of :func:`list_metrics`.
        n_classes: ``K``, the size of the model output's last axis.
        **params: the metric's parameters (``METRICS.entry(name).meta["params"]``).

    Returns:
        A fresh ``keras.metrics.Metric`` named ``name`` (``iou_class_{k}`` for
        ``iou_class``).

    Raises:
        ValueError: unknown name or parameter, or a bad value.
    """
    entry = METRICS.entry_accepting(name, params)
    return entry.obj(n_classes=n_classes, **params)


def list_metrics(pattern: str | None = None) -> list[str]:
    """Registered metric names, optionally filtered by a glob such as ``"iou*"``."""
    return METRICS.names(pattern)


def default_metrics(n_classes: int, task: str = "segmentation") -> list[keras.metrics.Metric]:
    """The metrics a benchmark trial reports for ``task``.

    Args:
        n_classes: ``K``, the model output's last axis.
        task: ``"segmentation"``: mean IoU, Dice, pixel accuracy and the IoU of every
            class (``iou_class_0`` ... ; 2 classes when ``K == 1``);
            ``"next_frame"``: PSNR and SSIM.

    Raises:
        ValueError: unknown task or bad ``n_classes``.
    """
    n_classes = _check_n_classes(n_classes, "default_metrics")
    if task == "segmentation":
        labels = 2 if n_classes == 1 else n_classes
        metrics = [get_metric(name, n_classes) for name in ("mean_iou", "dice_coef")]
        metrics.append(get_metric("pixel_accuracy", n_classes))
        metrics.extend(get_metric("iou_class", n_classes, class_id=k) for k in range(labels))
        return metrics
    if task == "next_frame":
        return [get_metric("psnr", n_classes), get_metric("ssim", n_classes)]
    raise ValueError(f"default_metrics: unknown task {task!r}; choose one of: {', '.join(TASKS)}")
