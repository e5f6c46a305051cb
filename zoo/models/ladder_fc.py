"""The fully connected Ladder network of Rasmus et al. 2015, built from the dense ladder's pieces.

The paper's permutation-invariant MNIST ladder is 784-1000-500-250-250-250-10; this
one takes any input width and hidden widths (default ``(100, 50, 25, 25, 25)``, the
paper's shape scaled to scikit-learn's 64-pixel 8x8 digits). Encoder maps are bias-free
``Dense`` layers, decoder maps ``V(l+1)`` bias-free ``Dense`` layers back down; the
clean and noisy encoders, batch normalisation, combinators and costs are the shared
:class:`zoo.models.ladder.LadderBase`, the same code the convolutional
:class:`zoo.models.ladder.LadderNetwork` runs. Its job is to prove those pieces on the
paper's own kind of task (``tests/perf/ladder_fc_digits.py``); it is not a registered
segmentation model.

Training convention as the dense ladder's: fit on ``(x, y, sample_weight)``, weight 0
for an unlabelled sample; the denoising costs are added on every sample with
``add_loss`` in training only.
"""

from __future__ import annotations

from typing import Any

import keras

from zoo.models.ladder import LadderBase

__all__ = ["PAPER_DENOISING_COSTS", "LadderFC", "build_ladder_fc"]

# Rasmus et al. 2015, MNIST with 100 labels: input, five hidden layers, top.
PAPER_DENOISING_COSTS: tuple[float, ...] = (1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1)
DEFAULT_WIDTHS: tuple[int, ...] = (100, 50, 25, 25, 25)


@keras.saving.register_keras_serializable(package="zoo")
class LadderFC(LadderBase):
    """Fully connected Ladder: x (B, D) -> top pre-activation (B, n_classes).

    Args:
        n_classes: K, units of the top layer.
        widths: hidden layer widths, bottom to top; levels are input, these, top.
        noise_std: standard deviation of the Gaussian noise of the noisy encoder.
        denoising_costs: one weight per level (``len(widths) + 2``); 0 skips a level.
        momentum: of the clean path's moving mean and variance used at inference.
        epsilon: added to the batch variance.
        seed: of the noise generator (None: random).
    """

    def __init__(
        self,
        n_classes: int,
        widths: tuple[int, ...] | list[int] = DEFAULT_WIDTHS,
        noise_std: float = 0.3,
        denoising_costs: tuple[float, ...] | list[float] = PAPER_DENOISING_COSTS,
        momentum: float = 0.9,
        epsilon: float = 1e-3,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        widths = [int(w) for w in widths]
        n_levels = len(widths) + 2
        if len(denoising_costs) != n_levels or any(c < 0 for c in denoising_costs):
            raise ValueError(
                f"ladder_fc denoising_costs must be {n_levels} numbers >= 0 (input, "
                f"{len(widths)} hidden layers, top), got {list(denoising_costs)!r}"
            )
        self.widths = widths
        # W(l), l = 1..L; no bias since batch normalisation follows (beta plays its part).
        self.encoder = [
            keras.layers.Dense(units, use_bias=False, name=f"encoder_{l}")
            for l, units in enumerate([*widths, n_classes], start=1)
        ]
        self._init_ladder(n_classes, n_levels, noise_std, denoising_costs, momentum, epsilon,
                          seed)
        # V(l+1): z^(l+1) -> u(l); units set in build.
        self.decoder = [
            keras.layers.Dense(1, use_bias=False, name=f"decoder_{l}")
            for l in range(self.lowest_level, n_levels - 1)
        ]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "widths": list(self.widths)}


def build_ladder_fc(
    input_dim: int,
    n_classes: int,
    *,
    widths: tuple[int, ...] | list[int] = DEFAULT_WIDTHS,
    noise_std: float = 0.3,
    denoising_costs: tuple[float, ...] | list[float] = PAPER_DENOISING_COSTS,
    momentum: float = 0.9,
    seed: int | None = None,
) -> keras.Model:
    """Fully connected Ladder classifier: x (B, input_dim) -> class probabilities (B, K).

    ``denoising_costs`` all 0 gives the noise-only baseline; all 0 but the top, the
    Γ-model; all 0 and ``noise_std=0``, the same network supervised only.
    """
    inputs = keras.Input((input_dim,), name="features")
    top = LadderFC(
        n_classes, widths=widths, noise_std=noise_std, denoising_costs=denoising_costs,
        momentum=momentum, seed=seed, name="ladder",
    )(inputs)
    activation = "sigmoid" if n_classes == 1 else "softmax"
    outputs = keras.layers.Activation(activation, dtype="float32", name="output")(top)
    return keras.Model(inputs, outputs, name="ladder_fc")
