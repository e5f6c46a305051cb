"""The convolutional Ladder network (Rasmus et al. 2015) for semi-supervised segmentation.

A Ladder network trains one feed-forward network ``f: x -> y`` with two costs at once:

- the supervised cost on the labelled samples, computed on the output of the *noisy*
  encoder (Gaussian noise added to the input and to every normalised pre-activation);
- an unsupervised denoising cost on *every* sample: a top-down decoder, fed at each
  level by a lateral connection from the noisy encoder, reconstructs the *clean*
  encoder's normalised pre-activations ``z(l)``; the squared error at layer ``l`` is
  weighted by ``denoising_costs[l]``.

At inference (``training=False``, ``predict``, ``evaluate``) only the clean encoder runs,
so predictions are deterministic and the decoder costs nothing.

Dense prediction: here ``f`` is a small fully convolutional network
(H -> H/2 -> H), so every level of the ladder is a feature map and the decoder
mirrors each encoder layer (a strided convolution is mirrored by a transposed one and
vice versa). Layers, with ``F = filters`` and ``K = n_classes``::

    l  encoder layer                      z(l) shape        decoder map V(l+1): z(l+1) -> z(l)
    0  input x                            (H,   W,   C)     conv 3x3 -> C
    1  conv 3x3                           (H,   W,   F)     transposed conv 3x3, stride 2 -> F
    2  conv 3x3, stride 2                 (H/2, W/2, 2F)    conv 3x3 -> 2F
    3  conv 3x3                           (H/2, W/2, 2F)    conv 3x3, dilation 2 -> 2F
    4  conv 3x3, dilation 2               (H/2, W/2, 2F)    conv 3x3, stride 2 -> 2F
    5  transposed conv 3x3, stride 2      (H,   W,   F)     conv 3x3 -> F
    6  conv 1x1 (top, softmax/sigmoid)    (H,   W,   K)     -

Each encoder layer is ``z = BN(W h)`` (batch statistics, no learned scale), then
``h = act(gamma * (z + beta))`` with ReLU below the top and softmax (sigmoid if K == 1)
at the top; the noisy path adds ``N(0, noise_std**2)`` to ``x`` and to every ``z``.
Top-down, ``u(L) = BN(h~(L))`` and ``u(l) = BN(V(l+1) z^(l+1))``; the denoised
``z^(l) = g(z~(l), u(l))`` uses the combinator of the paper, equation (2) (ten
parameters a1..a10 per channel; see :class:`LadderCombinator`). The cost at layer ``l``
is ``denoising_costs[l] * mean((BN_clean(z^(l)) - z(l))**2)`` where ``BN_clean``
normalises with the clean path's batch mean and standard deviation (layer 0 is not
normalised), as in the paper's Algorithm 1.

The algorithm is :class:`LadderBase`, whatever the layers; :class:`LadderNetwork` gives
it the convolutions above, :class:`zoo.models.ladder_fc.LadderFC` fully connected layers
(the paper's MNIST network, used to check these pieces against the paper on digits:
``tests/perf/ladder_fc_digits.py``).

Training convention (shared by every zoobench model of kind ``semi_supervised``):
fit on ``(x, y, sample_weight)`` where ``sample_weight`` is 1.0 for a labelled sample
and 0.0 for an unlabelled one (whose ``y`` is all zeros). The compiled loss is the
supervised cost, weighted by ``sample_weight``; the denoising costs are added by the
model itself with ``add_loss`` on every sample, only when ``training=True`` (so
``val_loss`` is the supervised loss alone). ``model.losses`` holds one scalar per layer
whose weight is non-zero after a training call.

Reference: A. Rasmus, H. Valpola, M. Honkala, M. Berglund, T. Raiko, "Semi-Supervised
Learning with Ladder Networks", NeurIPS 2015, arXiv:1507.02672.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from zoo.models.registry import register_model

__all__ = [
    "DEFAULT_DENOISING_COSTS", "LadderBase", "LadderCombinator", "LadderNetwork", "build_ladder",
]

# One weight per level l = 0..6 (input, five hidden layers, top), in the shape of the
# paper's MNIST setting [1000, 10, 0.1, ...] (most weight on the input, a step down per
# level) but far smaller: Keras averages the sample-weighted supervised cost over the
# whole batch (scaled by 0.5 with half the batch labelled), and larger weights lowered
# validation IoU at 5% labels (x10: 0.544, the paper's shape: 0.374, against 0.647;
# tests/perf/ladder_semi_supervised.py, seed 0; see the README).
DEFAULT_DENOISING_COSTS: tuple[float, ...] = (1.0, 0.1, 0.01, 0.01, 0.01, 0.01, 0.01)

# (kind, channel multiple of `filters`, dilation) of encoder layers 1..5; layer 6 is the
# 1x1 top layer with n_classes channels. "down": stride 2; "up": transposed, stride 2.
_ENCODER = (
    ("conv", 1, 1),
    ("down", 2, 1),
    ("conv", 2, 1),
    ("conv", 2, 2),
    ("up", 1, 1),
)
N_LEVELS = len(_ENCODER) + 2  # input + hidden layers + top


@keras.saving.register_keras_serializable(package="zoo")
class LadderCombinator(keras.layers.Layer):
    """The Ladder network's denoising function g, Rasmus et al. 2015, equation (2).

    ``z^ = (z~ - mu(u)) * v(u) + mu(u)`` with, per channel,
    ``mu(u) = a1 * sigmoid(a2 * u + a3) + a4 * u + a5`` and
    ``v(u) = a6 * sigmoid(a7 * u + a8) + a9 * u + a10``.

    The paper makes the ten parameters per unit; for feature maps they are per
    channel (shared over positions, as a convolution shares its kernel). Initial
    values as in the authors' code: a2 = a7 = 1, the rest 0.

    Call on ``[z_tilde, u]``, two tensors of shape (B, ..., channels) (feature maps
    (B, H, W, C) or fully connected units (B, C)); returns z^ of the same shape.
    """

    _INITIAL = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)

    def build(self, input_shape: list[tuple[int | None, ...]]) -> None:
        channels = input_shape[0][-1]
        self.a = [
            self.add_weight(
                name=f"a{i + 1}",
                shape=(channels,),
                initializer=keras.initializers.Constant(value),
            )
            for i, value in enumerate(self._INITIAL)
        ]

    def call(self, inputs: list[Any]) -> Any:
        z_tilde, u = inputs
        a = self.a
        mu = a[0] * ops.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
        v = a[5] * ops.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
        return (z_tilde - mu) * v + mu

    def compute_output_shape(self, input_shape: list[tuple[int | None, ...]]) -> tuple:
        return tuple(input_shape[0])


def _normalise(z: Any, epsilon: float) -> tuple[Any, Any, Any]:
    """Batch-normalise ``z`` per channel (last axis) over all other axes.

    ``z`` is (B, units) or (B, H, W, C); returns (z_bn, mean, std), mean and std with
    ``z``'s rank (kept dims).
    """
    mean, var = ops.moments(z, axes=tuple(range(len(z.shape) - 1)), keepdims=True)
    std = ops.sqrt(var + epsilon)
    return (z - mean) / std, mean, std


class LadderBase(keras.layers.Layer):
    """The Ladder algorithm (Rasmus et al. 2015, Algorithm 1), whatever the layers.

    Subclasses give the encoder maps ``W(l)``, l = 1..L (``self.encoder``, bias-free
    layers built here), and the decoder maps ``V(l+1): z^(l+1) -> u(l)`` for the levels
    ``lowest_level .. L-1`` (``self.decoder``, output width set in ``build``), and call
    ``_init_ladder`` from ``__init__``. Everything else is shared: the clean and noisy
    encoders, the batch normalisation, the combinators and the costs. The fully
    connected ladder (:mod:`zoo.models.ladder_fc`) checks these pieces on the paper's own
    kind of task.

    Maps x to the top layer's pre-activation ``gamma * (z + beta)``: the noisy
    encoder's when ``training=True`` (and then adds the denoising costs with
    ``add_loss``), the clean encoder's otherwise.
    """

    def _init_ladder(
        self,
        n_classes: int,
        n_levels: int,
        noise_std: float,
        denoising_costs: tuple[float, ...] | list[float],
        momentum: float,
        epsilon: float,
        seed: int | None,
    ) -> None:
        self.n_classes = int(n_classes)
        self.n_levels = int(n_levels)
        self.noise_std = float(noise_std)
        self.denoising_costs = [float(c) for c in denoising_costs]
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # The clean path's statistics at inference; the batch's own while training.
        self.clean_norms = [
            keras.layers.BatchNormalization(
                center=False, scale=False, momentum=self.momentum, epsilon=self.epsilon,
                name=f"clean_norm_{l}",
            )
            for l in range(1, self.n_levels)
        ]
        # One combinator per level from the top down to the lowest level with a cost
        # (the levels below would get no gradient): combinators[i] is g at level
        # lowest + i; subclasses make decoder[i] = V(lowest + i + 1) likewise.
        costly = [l for l, c in enumerate(self.denoising_costs) if c > 0]
        self.lowest_level = costly[0] if costly else self.n_levels
        self.combinators = [
            LadderCombinator(name=f"combinator_{l}")
            for l in range(self.lowest_level, self.n_levels)
        ]

    @property
    def uses_decoder(self) -> bool:
        """Whether any level has a denoising cost (else this is a plain BN network)."""
        return self.lowest_level < self.n_levels

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        shapes = [tuple(input_shape)]
        for layer, norm in zip(self.encoder, self.clean_norms, strict=True):
            layer.build(shapes[-1])
            shapes.append(tuple(layer.compute_output_shape(shapes[-1])))
            norm.build(shapes[-1])
        channels = [int(shape[-1]) for shape in shapes]
        self.gammas = [
            self.add_weight(name=f"gamma_{l}", shape=(channels[l],), initializer="ones")
            for l in range(1, self.n_levels)
        ]
        self.betas = [
            self.add_weight(name=f"beta_{l}", shape=(channels[l],), initializer="zeros")
            for l in range(1, self.n_levels)
        ]
        for l, layer in enumerate(self.decoder, start=self.lowest_level):
            # V(l+1) outputs channels[l]; set here because only now the input's are known.
            if hasattr(layer, "filters"):
                layer.filters = channels[l]
            else:
                layer.units = channels[l]
            layer.build(shapes[l + 1])
        for l, combinator in enumerate(self.combinators, start=self.lowest_level):
            combinator.build([shapes[l], shapes[l]])

    def _activate(self, l: int, z: Any) -> Any:
        """h(l) = act(gamma(l) * (z(l) + beta(l))) for l = 1..L; the pre-activation at top."""
        pre = self.gammas[l - 1] * (z + self.betas[l - 1])
        return pre if l == self.n_levels - 1 else ops.relu(pre)

    def _top_activation(self, pre: Any) -> Any:
        return ops.sigmoid(pre) if self.n_classes == 1 else ops.softmax(pre, axis=-1)

    def _noise(self, z: Any) -> Any:
        if self.noise_std == 0.0:
            return z
        return z + self.noise_std * keras.random.normal(
            ops.shape(z), dtype=z.dtype, seed=self.seed_generator
        )

    def _clean(self, x: Any, training: bool) -> tuple[Any, list[Any], list[Any], list[Any]]:
        """Clean encoder: (top pre-activation, z(l), batch mean(l), batch std(l)), l = 0..L."""
        zs, means, stds = [x], [None], [None]
        h = x
        for l in range(1, self.n_levels):
            z_pre = self.encoder[l - 1](h)
            if training and self.uses_decoder:
                # The targets' statistics; the same numbers BatchNormalization uses.
                _, mean, std = _normalise(z_pre, self.epsilon)
                means.append(mean)
                stds.append(std)
            z = self.clean_norms[l - 1](z_pre, training=training)
            zs.append(z)
            h = self._activate(l, z)
        return h, zs, means, stds

    def _noisy(self, x: Any) -> tuple[Any, list[Any]]:
        """Noisy encoder (training only): (top pre-activation, z~(l) for l = 0..L)."""
        z = self._noise(x)
        zs, h = [z], z
        for l in range(1, self.n_levels):
            z, _, _ = _normalise(self.encoder[l - 1](h), self.epsilon)
            z = self._noise(z)
            zs.append(z)
            h = self._activate(l, z)
        return h, zs

    def _denoising_costs(
        self, top: Any, noisy_zs: list[Any], clean_zs: list[Any], means: list[Any],
        stds: list[Any],
    ) -> None:
        """Run the decoder top-down and add each level's weighted reconstruction cost."""
        u, _, _ = _normalise(self._top_activation(top), self.epsilon)
        lowest = self.lowest_level
        for l in range(self.n_levels - 1, lowest - 1, -1):
            z_hat = self.combinators[l - lowest]([noisy_zs[l], u])
            if self.denoising_costs[l] > 0:
                target = clean_zs[l]
                z_hat_bn = z_hat if l == 0 else (z_hat - means[l]) / stds[l]
                error = ops.mean(ops.square(ops.cast(z_hat_bn - target, "float32")))
                self.add_loss(self.denoising_costs[l] * error)
            if l > lowest:
                u, _, _ = _normalise(self.decoder[l - 1 - lowest](z_hat), self.epsilon)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        training = bool(training)
        clean_top, clean_zs, means, stds = self._clean(inputs, training)
        if not training or (self.noise_std == 0.0 and not self.uses_decoder):
            # Without noise the noisy path is the clean one: no need to run it twice.
            return clean_top
        noisy_top, noisy_zs = self._noisy(inputs)
        if self.uses_decoder:
            self._denoising_costs(noisy_top, noisy_zs, clean_zs, means, stds)
        return noisy_top

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple:
        return (*tuple(input_shape)[:-1], self.n_classes)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_classes": self.n_classes,
            "noise_std": self.noise_std,
            "denoising_costs": list(self.denoising_costs),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="zoo")
class LadderNetwork(LadderBase):
    """Clean encoder, noisy encoder and denoising decoder of a convolutional Ladder.

    Maps x (B, H, W, C) to the top layer's pre-activation ``gamma * (z + beta)``
    (B, H, W, n_classes): the noisy encoder's when ``training=True`` (and then adds
    the denoising costs with ``add_loss``), the clean encoder's otherwise. The final
    softmax/sigmoid is a separate float32 layer of the model (mixed precision).

    Args:
        n_classes: K, channels of the output.
        filters: F, channels of the first layer (the widest layers have 2F).
        noise_std: standard deviation of the Gaussian noise of the noisy encoder.
        denoising_costs: the weight of each level's reconstruction cost, one per level
            0..6 (input, five hidden layers, top); 0 skips a level.
        momentum: of the clean path's moving mean and variance used at inference.
        epsilon: added to the batch variance.
        seed: of the noise generator (None: random).
    """

    def __init__(
        self,
        n_classes: int,
        filters: int = 16,
        noise_std: float = 0.3,
        denoising_costs: tuple[float, ...] | list[float] = DEFAULT_DENOISING_COSTS,
        momentum: float = 0.9,
        epsilon: float = 1e-3,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_options(n_classes, filters, noise_std, denoising_costs)
        self.filters = int(filters)
        # Encoder maps W(l), l = 1..6, shared by the clean and the noisy path; no bias
        # since batch normalisation follows (beta plays its part).
        self.encoder: list[keras.layers.Layer] = []
        for i, (kind, mult, dilation) in enumerate(_ENCODER, start=1):
            self.encoder.append(_conv(kind, mult * self.filters, dilation, f"encoder_{i}"))
        self.encoder.append(
            keras.layers.Conv2D(n_classes, 1, use_bias=False, name=f"encoder_{N_LEVELS - 1}")
        )
        self._init_ladder(n_classes, N_LEVELS, noise_std, denoising_costs, momentum, epsilon,
                          seed)
        # Decoder maps V(l+1): z^(l+1) -> u(l), mirroring encoder layer l+1.
        self.decoder: list[keras.layers.Layer] = []
        for l in range(self.lowest_level, N_LEVELS - 1):
            kind, _, dilation = _ENCODER[l] if l < len(_ENCODER) else ("top", 1, 1)
            mirror = {"down": "up", "up": "down"}.get(kind, "conv")
            self.decoder.append(_conv(mirror, None, dilation, f"decoder_{l}"))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters}


def _conv(kind: str, filters: int | None, dilation: int, name: str) -> keras.layers.Layer:
    """A 3x3 bias-free convolution: ``conv`` (same size), ``down`` (stride 2), ``up``
    (transposed, stride 2). ``filters=None`` is set later in ``build``."""
    common = {"use_bias": False, "padding": "same", "name": name}
    if kind == "down":
        return keras.layers.Conv2D(filters or 1, 3, strides=2, **common)
    if kind == "up":
        return keras.layers.Conv2DTranspose(filters or 1, 3, strides=2, **common)
    return keras.layers.Conv2D(filters or 1, 3, dilation_rate=dilation, **common)


def _check_options(
    n_classes: int, filters: int, noise_std: float, denoising_costs: Any
) -> None:
    if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
        raise ValueError(f"ladder option filters must be a positive int, got {filters!r}")
    if not isinstance(noise_std, (int, float)) or isinstance(noise_std, bool) or noise_std < 0:
        raise ValueError(f"ladder option noise_std must be a number >= 0, got {noise_std!r}")
    costs = list(denoising_costs) if isinstance(denoising_costs, (list, tuple)) else None
    if (
        costs is None
        or len(costs) != N_LEVELS
        or any(not isinstance(c, (int, float)) or isinstance(c, bool) or c < 0 for c in costs)
    ):
        raise ValueError(
            f"ladder option denoising_costs must be a list of {N_LEVELS} numbers >= 0 "
            f"(levels: input, 5 hidden layers, top), got {denoising_costs!r}"
        )


@register_model(
    "ladder",
    kind="semi_supervised",
    divisor=2,
    min_size=4,
    options={
        "filters": 16,
        "noise_std": 0.3,
        "denoising_costs": list(DEFAULT_DENOISING_COSTS),
        "momentum": 0.9,
        "seed": None,
    },
    paper="Rasmus et al. 2015, Semi-Supervised Learning with Ladder Networks, NeurIPS",
)
def build_ladder(
    input_height: int,
    input_width: int,
    input_channels: int,
    n_classes: int,
    *,
    filters: int,
    noise_std: float,
    denoising_costs: list[float],
    momentum: float,
    seed: int | None,
) -> keras.Model:
    """Convolutional Ladder network: noisy/clean encoders and a denoising decoder (semi-supervised).

    Train with ``fit`` on ``(x, y, sample_weight)``, sample weight 0.0 marking an
    unlabelled sample; the denoising costs are added on every sample. With
    ``denoising_costs`` all 0 and ``noise_std=0`` it is the same encoder trained
    supervised only. See the module docstring for the layers and costs.
    """
    inputs = keras.Input((input_height, input_width, input_channels), name="image")
    top = LadderNetwork(
        n_classes,
        filters=filters,
        noise_std=noise_std,
        denoising_costs=denoising_costs,
        momentum=momentum,
        seed=seed,
        name="ladder",
    )(inputs)
    activation = "sigmoid" if n_classes == 1 else "softmax"
    outputs = keras.layers.Activation(activation, dtype="float32", name="output")(top)
    return keras.Model(inputs, outputs, name="ladder")
