"""Segmentation losses: crossentropies, Dice, generalised Dice and focal, composable.

Every loss is a ``keras.losses.Loss`` whose ``call(y_true, y_pred)`` returns one
value per sample, shape ``(B,)``: every axis but the batch axis is reduced inside
the loss, so Keras sample weights of shape ``(B,)`` (the Ladder network gives its
unlabelled samples weight 0) weight whole samples.

Tensors follow the zoo's conventions: images ``(B, H, W, K)``, sequences
``(B, T, H, W, K)``. ``K == 1``: ``y_pred`` is a sigmoid probability and ``y_true``
a mask in ``{0, 1}`` (or a grey level in ``[0, 1]``). ``K >= 2``: ``y_pred`` is a
softmax over the last axis and ``y_true`` one-hot. Predictions are probabilities,
not logits: every zoo model ends with its sigmoid or softmax.

Ignored pixels (a dataset's ``ignore_index``, e.g. VOC's void border): for ``K >= 2`` a
pixel whose ``y_true`` row is all zero counts in no loss. Crossentropies and focal
average over the other pixels of the sample; Dice and generalised Dice leave the
prediction at those pixels out of their sums. (A one-hot or soft target row sums to 1,
so nothing changes for fully labelled data.)

Losses compose like numbers (the pattern of qubvel's segmentation_models)::

    >>> loss = get_loss("dice") + 0.5 * get_loss("focal")
    >>> loss.name
    'dice+0.5*focal'

``bce_dice`` and ``ce_dice`` are such compositions, registered under a name.
Every class is registered serialisable (package ``zoo``), so a model compiled with
any of them, combined or not, saves to ``.keras`` and loads with ``safe_mode=True``.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

# The weighting and reduction that keras.losses.Loss.__call__ applies (see ZooLoss.__call__).
from keras.src.losses.loss import reduce_weighted_values

from zoo.registry import Registry

LossFactory = Callable[..., keras.losses.Loss]
LOSSES: Registry[LossFactory] = Registry("loss")

# Probabilities are clipped to [EPSILON, 1 - EPSILON] before a log: a saturated
# softmax/sigmoid (exact 0 or 1 in float32) would otherwise give -inf and NaN grads.
EPSILON = 1e-7

# Characters TensorFlow name scopes accept; "+" and "*" of "dice+0.5*focal" are not.
_NOT_IN_SCOPE_NAMES = re.compile(r"[^A-Za-z0-9_.\\/>-]")


def _spatial_axes(x: Any) -> list[int]:
    """Axes between the batch axis and the class axis: (H, W) or (T, H, W)."""
    return list(range(1, len(x.shape) - 1))


def _per_sample_mean(x: Any) -> Any:
    """Mean over every axis but the first: ``(B, ...) -> (B,)``."""
    return ops.mean(x, axis=list(range(1, len(x.shape))))


def _labelled(y_true: Any) -> Any:
    """1.0 where a pixel has a target, 0.0 where its row is all zero (ignored): (..., 1)."""
    return ops.cast(ops.sum(y_true, axis=-1, keepdims=True) > 0, y_true.dtype)


def _mean_over_labelled(per_pixel: Any, labelled: Any) -> Any:
    """Mean of ``per_pixel`` (B, ...) over each sample's labelled pixels: ``(B,)``; 0 if none."""
    labelled = ops.squeeze(labelled, -1)
    axes = list(range(1, len(per_pixel.shape)))
    count = ops.sum(labelled, axis=axes)
    return ops.sum(per_pixel * labelled, axis=axes) / ops.maximum(count, 1.0)


def _n_classes(y_pred: Any) -> int:
    k = y_pred.shape[-1]
    if k is None:
        raise ValueError("y_pred's last axis (the classes) must have a static size")
    return int(k)


def _two_class(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Binary ``(..., 1)`` tensors as two channels ``[background, foreground]``."""
    return (
        ops.concatenate([1.0 - y_true, y_true], axis=-1),
        ops.concatenate([1.0 - y_pred, y_pred], axis=-1),
    )


def _format_weight(weight: float) -> str:
    return f"{weight:g}"


class ZooLoss(keras.losses.Loss):
    """Base of the zoo's losses: per-sample outputs and composition with ``+``, ``*``.

    ``a + b`` and ``w * a`` (or ``a * w``) return a :class:`CombinedLoss`.
    """

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The weighted, reduced loss, as ``keras.losses.Loss.__call__`` computes it.

        The base class opens a name scope called after the loss, which TensorFlow
        refuses for readable names such as ``dice+0.5*focal``; here the scope name
        has such characters replaced by ``_``. Keras masks are not applied: the
        zoo's dense-prediction outputs carry none.
        """
        with keras.name_scope(_NOT_IN_SCOPE_NAMES.sub("_", self.name)):
            y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
            y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            return reduce_weighted_values(
                self.call(y_true, y_pred),
                sample_weight=sample_weight,
                reduction=self.reduction,
                dtype=self.dtype,
            )

    def __add__(self, other: Any) -> CombinedLoss:
        if not isinstance(other, keras.losses.Loss):
            return NotImplemented
        return CombinedLoss(_terms(self) + _terms(other))

    def __radd__(self, other: Any) -> CombinedLoss:
        # sum([a, b]) starts from 0: let it through so sum() of losses works.
        if isinstance(other, (int, float)) and other == 0:
            return CombinedLoss(_terms(self))
        if not isinstance(other, keras.losses.Loss):
            return NotImplemented
        return CombinedLoss(_terms(other) + _terms(self))

    def __mul__(self, factor: Any) -> CombinedLoss:
        if isinstance(factor, bool) or not isinstance(factor, numbers.Real):
            return NotImplemented
        return CombinedLoss([(float(factor) * c, loss) for c, loss in _terms(self)])

    __rmul__ = __mul__


def _terms(loss: keras.losses.Loss) -> list[tuple[float, keras.losses.Loss]]:
    """The weighted terms of ``loss``: itself with weight 1, or a combination's terms."""
    if isinstance(loss, CombinedLoss):
        return list(zip(loss.coefficients, loss.losses, strict=True))
    return [(1.0, loss)]


@keras.saving.register_keras_serializable(package="zoo")
class CombinedLoss(ZooLoss):
    """A weighted sum of losses, ``sum_i coefficients[i] * losses[i]``, per sample.

    Usually made with ``+`` and ``*`` rather than directly. Nested combinations
    are flattened, so ``(a + b) + 0.5 * c`` has three terms. A term whose ``call``
    returns more than one value per sample (Keras' built-in losses reduce only the
    last axis) is averaged to ``(B,)`` first, as Keras' own reduction would.

    Args:
        terms: ``(coefficient, loss)`` pairs.
        name: defaults to the terms joined by ``+``, e.g. ``"dice+0.5*focal"``.
        reduction: Keras reduction of the per-sample values.
    """

    def __init__(
        self,
        terms: Sequence[tuple[float, keras.losses.Loss]],
        name: str | None = None,
        reduction: str = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        flat: list[tuple[float, keras.losses.Loss]] = []
        for coefficient, loss in terms:
            if not isinstance(loss, keras.losses.Loss):
                raise ValueError(
                    f"CombinedLoss terms must be keras.losses.Loss instances, got {loss!r}"
                )
            flat.extend((float(coefficient) * c, inner) for c, inner in _terms(loss))
        if not flat:
            raise ValueError("CombinedLoss needs at least one term")
        self.coefficients = [c for c, _ in flat]
        self.losses = [loss for _, loss in flat]
        if name is None:
            name = "+".join(
                loss.name if c == 1.0 else f"{_format_weight(c)}*{loss.name}" for c, loss in flat
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        total = None
        for coefficient, loss in zip(self.coefficients, self.losses, strict=True):
            value = loss.call(y_true, y_pred)
            if len(value.shape) > 1:
                value = _per_sample_mean(value)
            value = value if coefficient == 1.0 else coefficient * value
            total = value if total is None else total + value
        return total

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["terms"] = [
            {"coefficient": c, "loss": keras.saving.serialize_keras_object(loss)}
            for c, loss in zip(self.coefficients, self.losses, strict=True)
        ]
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CombinedLoss:
        config = dict(config)
        terms = [
            (t["coefficient"], keras.saving.deserialize_keras_object(t["loss"]))
            for t in config.pop("terms")
        ]
        return cls(terms, **config)


@LOSSES.register("categorical_crossentropy", params={})
@keras.saving.register_keras_serializable(package="zoo")
class CategoricalCrossentropy(ZooLoss):
    """Categorical crossentropy -sum_k y_k log p_k, averaged over pixels per sample.

    For ``K == 1`` the sigmoid output is read as the two classes
    ``[1 - p, p]``, which makes it the binary crossentropy.
    """

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        reduction: str = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        if _n_classes(y_pred) == 1:
            y_true, y_pred = _two_class(y_true, y_pred)
        y_pred = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
        per_pixel = -ops.sum(y_true * ops.log(y_pred), axis=-1)
        return _mean_over_labelled(per_pixel, _labelled(y_true))


@LOSSES.register("binary_crossentropy", params={})
@keras.saving.register_keras_serializable(package="zoo")
class BinaryCrossentropy(ZooLoss):
    """Binary crossentropy -[y log p + (1-y) log(1-p)], averaged per sample.

    The mean runs over every pixel and channel: for ``K >= 2`` each channel is
    an independent binary problem (as ``keras.losses.binary_crossentropy``).
    """

    def __init__(
        self,
        name: str = "binary_crossentropy",
        reduction: str = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
        per_element = -(y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred))
        if _n_classes(y_pred) == 1:
            return _per_sample_mean(per_element)
        # K >= 2: the channels' mean per pixel, averaged over the labelled pixels.
        return _mean_over_labelled(ops.mean(per_element, axis=-1), _labelled(y_true))


def _class_weights(weights: Sequence[float] | None, where: str) -> list[float] | None:
    """Validated, normalised (sum 1) per-class weights, or None."""
    if weights is None:
        return None
    try:
        values = [float(w) for w in weights]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: weights must be a list of numbers, got {weights!r}") from None
    if not values or any(w < 0 for w in values) or sum(values) <= 0:
        raise ValueError(f"{where}: weights must be non-negative with a positive sum, got {values}")
    total = sum(values)
    return [w / total for w in values]


def _check_length(values: Sequence[float], expected: int, what: str, where: str) -> None:
    if len(values) != expected:
        raise ValueError(
            f"{where}: {what} has {len(values)} entries but y_pred needs {expected} "
            f"(one per class of the last axis)"
        )


@LOSSES.register("dice", params={"weights": None, "smooth": 1.0})
@keras.saving.register_keras_serializable(package="zoo")
class Dice(ZooLoss):
    """Soft Dice loss 1 - sum_k w_k (2|Y_k P_k| + s) / (|Y_k| + |P_k| + s), per sample.

    Sums run over the pixels (and timesteps) of each sample; ``s`` (``smooth``)
    keeps a class absent from both truth and prediction at Dice 1 and every value
    finite; with ``smooth=0`` such a class is counted as Dice 1 explicitly (not
    0/0). Without ``weights`` every class counts equally; with ``weights`` (one per
    class, normalised to sum 1, as the seed's optional class weighting) rare classes
    can be made to count more. For ``K == 1`` it is the binary Dice of the
    foreground channel (``weights``, if given, has one entry).

    Args:
        weights: optional per-class weights, length ``K``.
        smooth: added to numerator and denominator.
    """

    def __init__(
        self,
        weights: Sequence[float] | None = None,
        smooth: float = 1.0,
        name: str = "dice",
        reduction: str = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        self.weights = _class_weights(weights, "dice")
        if smooth < 0:
            raise ValueError(f"dice: smooth must be >= 0, got {smooth}")
        self.smooth = float(smooth)
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        k = _n_classes(y_pred)
        axes = _spatial_axes(y_pred)
        if k > 1:
            y_pred = y_pred * _labelled(y_true)  # ignored pixels: no prediction counts
        intersection = ops.sum(y_true * y_pred, axis=axes)  # (B, K)
        denominator = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes) + self.smooth
        # With smooth=0 a class absent from both truth and prediction is 0/0: count it as
        # Dice 1 (what any smooth > 0 gives it). The safe denominator keeps the gradient
        # of the branch not taken finite, which ops.where alone would not.
        empty = denominator <= 0.0
        safe = ops.where(empty, 1.0, denominator)
        dice = ops.where(empty, 1.0, (2.0 * intersection + self.smooth) / safe)
        if self.weights is None:
            return 1.0 - ops.mean(dice, axis=-1)
        _check_length(self.weights, k, "weights", "dice")
        weights = ops.convert_to_tensor(self.weights, dtype=dice.dtype)
        return 1.0 - ops.sum(dice * weights, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weights": self.weights, "smooth": self.smooth}


@LOSSES.register("generalized_dice", params={})
@keras.saving.register_keras_serializable(package="zoo")
class GeneralizedDice(ZooLoss):
    """Generalised Dice loss of Sudre et al. 2017, per sample.

    ``GDL = 1 - 2 sum_l w_l sum_n r_ln p_ln / sum_l w_l sum_n (r_ln + p_ln)`` with
    ``w_l = 1 / (sum_n r_ln)^2``: the sums over ``n`` run over the pixels (and
    timesteps) of one sample, so each class weighs the inverse square of its area
    in that sample (one value per sample, so sample weights apply; NiftyNet sums
    over the whole batch instead). For ``K == 1`` the two classes are background
    and foreground, as in the paper's binary experiments.

    A class absent from a sample has ``sum_n r_ln = 0`` and an infinite weight.
    As NiftyNet's ``generalised_dice_loss`` (NifTK/NiftyNet,
    ``niftynet/layer/loss_segmentation.py``, the library of the paper's authors)
    does, such a class gets the largest weight among the classes present in that
    sample: predicting an absent class is penalised like predicting the rarest
    present one, and the loss stays finite. A sample with
    no labelled pixel at all (an all-zero mask, e.g. an unlabelled Ladder sample)
    falls back to equal weights and so has loss 1.
    """

    def __init__(
        self,
        name: str = "generalized_dice",
        reduction: str = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        if _n_classes(y_pred) == 1:
            y_true, y_pred = _two_class(y_true, y_pred)
        else:
            y_pred = y_pred * _labelled(y_true)  # ignored pixels: no prediction counts
        axes = _spatial_axes(y_pred)
        ref_volume = ops.sum(y_true, axis=axes)  # (B, L)
        present = ref_volume > 0
        weights = ops.where(present, 1.0 / ops.square(ops.where(present, ref_volume, 1.0)), 0.0)
        max_weight = ops.max(weights, axis=-1, keepdims=True)
        # No class present: every weight is 0; use equal weights instead.
        max_weight = ops.where(max_weight > 0, max_weight, 1.0)
        weights = ops.where(present, weights, max_weight)
        numerator = ops.sum(weights * ops.sum(y_true * y_pred, axis=axes), axis=-1)
        denominator = ops.sum(weights * ops.sum(y_true + y_pred, axis=axes), axis=-1)
        # The denominator is 0 only when truth and prediction are both empty.
        return 1.0 - 2.0 * numerator / ops.maximum(denominator, EPSILON)


def _alphas(alpha: float | Sequence[float] | None) -> float | list[float] | None:
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        if alpha < 0:
            raise ValueError(f"focal: alpha must be >= 0, got {alpha}")
        return float(alpha)
    try:
        values = [float(a) for a in alpha]
    except (TypeError, ValueError):
        raise ValueError(
            f"focal: alpha must be a number, a list of per-class numbers or None, got {alpha!r}"
        ) from None
    if any(a < 0 for a in values):
        raise ValueError(f"focal: alpha values must be >= 0, got {values}")
    return values


@LOSSES.register("focal", params={"gamma": 2.0, "alpha": 0.25})
@keras.saving.register_keras_serializable(package="zoo")
class Focal(ZooLoss):
    """Focal loss of Lin et al. 2017, FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t).

    Averaged over the pixels (and timesteps) of each sample: every pixel plays the
    part of one of the paper's anchors, and a mean (where the paper divides the sum
    by the number of positive anchors) keeps the scale independent of image size.

    ``K == 1`` (the paper's binary case): ``p_t = p`` where ``y = 1`` and ``1 - p``
    where ``y = 0``; ``alpha_t = alpha`` for the foreground and ``1 - alpha`` for the
    background, as in the paper (default 0.25); a list gives the two weights
    ``[background, foreground]`` directly. ``alpha=None`` switches the
    balancing off (``alpha_t = 1``), which with ``gamma=0`` is the binary
    crossentropy; note that with the paper's ``alpha_t``, ``alpha=1`` gives the
    background weight 0.

    ``K >= 2``: ``FL = -sum_k alpha_k y_k (1 - p_k)^gamma log(p_k)``, with
    ``alpha`` either one number for every class (as Keras'
    ``CategoricalFocalCrossentropy``) or a list with one weight per class.
    ``gamma=0, alpha=1`` is the categorical crossentropy.

    Args:
        gamma: focusing parameter, >= 0; 0 turns focusing off.
        alpha: balancing weight(s) as above, or None.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = 0.25,
        name: str = "focal",
        reduction: str = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if gamma < 0:
            raise ValueError(f"focal: gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.alpha = _alphas(alpha)
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        k = _n_classes(y_pred)
        y_pred = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
        if k == 1:
            return _per_sample_mean(self._binary(y_true, y_pred))
        return _mean_over_labelled(self._categorical(y_true, y_pred, k), _labelled(y_true))

    def _binary(self, y_true: Any, y_pred: Any) -> Any:
        positive = y_true * ops.power(1.0 - y_pred, self.gamma) * ops.log(y_pred)
        negative = (1.0 - y_true) * ops.power(y_pred, self.gamma) * ops.log(1.0 - y_pred)
        if isinstance(self.alpha, list):
            if len(self.alpha) != 2:
                raise ValueError(
                    f"focal: for a sigmoid output alpha is one number or 2 weights "
                    f"[background, foreground], got {self.alpha}"
                )
            alpha_background, alpha_foreground = self.alpha
        elif self.alpha is None:
            alpha_background = alpha_foreground = 1.0
        elif self.alpha > 1.0:
            raise ValueError(
                f"focal: for a sigmoid output alpha must be in [0, 1] (the background "
                f"gets 1 - alpha), got {self.alpha}"
            )
        else:
            alpha_background, alpha_foreground = 1.0 - self.alpha, self.alpha
        return -(alpha_foreground * positive + alpha_background * negative)

    def _categorical(self, y_true: Any, y_pred: Any, k: int) -> Any:
        terms = y_true * ops.power(1.0 - y_pred, self.gamma) * ops.log(y_pred)
        if isinstance(self.alpha, list):
            _check_length(self.alpha, k, "alpha", "focal")
            terms = terms * ops.convert_to_tensor(self.alpha, dtype=terms.dtype)
        elif self.alpha is not None:
            terms = self.alpha * terms
        return -ops.sum(terms, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


@LOSSES.register("bce_dice", params={"weights": None, "smooth": 1.0})
def bce_dice(weights: Sequence[float] | None = None, smooth: float = 1.0) -> CombinedLoss:
    """Binary crossentropy + Dice (``weights`` and ``smooth`` go to the Dice term)."""
    combined = BinaryCrossentropy() + Dice(weights=weights, smooth=smooth)
    return CombinedLoss(_terms(combined), name="bce_dice")


@LOSSES.register("ce_dice", params={"weights": None, "smooth": 1.0})
def ce_dice(weights: Sequence[float] | None = None, smooth: float = 1.0) -> CombinedLoss:
    """Categorical crossentropy + Dice (``weights`` and ``smooth`` go to the Dice term)."""
    combined = CategoricalCrossentropy() + Dice(weights=weights, smooth=smooth)
    return CombinedLoss(_terms(combined), name="ce_dice")


def register_loss(name: str, *, params: dict[str, Any] | None = None,
                  summary: str = "") -> Callable[[LossFactory], LossFactory]:
    """Decorator registering a loss factory under ``name`` (how plugins add their losses).

    ``factory(**params) -> keras.losses.Loss`` is what :func:`get_loss` calls, with the
    parameters the user gave (those not given take the factory's defaults); ``params``
    maps each parameter name to its default, and names outside it are refused. The loss
    should return one value per sample, shape ``(B,)`` (see the module docstring), so
    that sample weights weight samples. The summary defaults to the docstring's first line.

    >>> @register_loss("scaled_ce", params={"scale": 1.0})
    ... def scaled_ce(scale: float = 1.0) -> keras.losses.Loss:
    ...     return scale * get_loss("categorical_crossentropy")
    """
    return LOSSES.register(name, summary=summary, params=dict(params or {}))


def get_loss(name: str, **params: Any) -> keras.losses.Loss:
    """A new loss by registry name, e.g. ``get_loss("focal", gamma=2.0, alpha=0.25)``.

    Args:
        name: one of :func:`list_losses`.
        **params: the loss's parameters (see ``LOSSES.entry(name).meta["params"]``).

    Returns:
        A ``keras.losses.Loss`` whose ``call`` gives one value per sample, ``(B,)``.

    Raises:
        ValueError: unknown name or parameter.
    """
    entry = LOSSES.entry_accepting(name, params)
    return entry.obj(**params)


def list_losses(pattern: str | None = None) -> list[str]:
    """Registered loss names, optionally filtered by a glob such as ``"*dice*"``."""
    return LOSSES.names(pattern)


def describe_loss(name: str) -> dict[str, Any]:
    """Summary line and parameters (with defaults) of the loss ``name``."""
    entry = LOSSES.entry(name)
    return {"name": name, "summary": entry.summary, "params": dict(entry.meta.get("params", {}))}
