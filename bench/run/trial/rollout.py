"""Rollout: next-frame PSNR 1, 2, ... n steps ahead, each prediction fed back as input.

One step ahead is what training scores; feeding predictions back shows how fast they
blur. ``test_psnr_step_<j>`` is the mean PSNR (zoo's ``psnr``) of the j-th predicted
frame over the test sequences.

- Sequence models (x (N, T, H, W, 1)): the model is rebuilt ``stateful=True,
  timesteps=1, batchsize=N`` with the trained weights (the recipe ``zoo`` tests), fed
  the first ``c = T - n + 1`` true frames one by one, then its own predictions; step j
  is scored against true frame ``c + j - 1`` (``y[:, c + j - 2]``).
- Image models on stacked frames (``layout: channels``, x (H, W, k)): from the first
  window of each sequence, the window shifts by one frame per step, the prediction
  entering as its newest channel; step j is scored against the next frame of the
  sequence's window ``j - 1``. This needs the windows' order, known for ``moving_digits``
  (``frames``, ``stack``), so other image data gets no rollout.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.results.baselines import dataset_arrays  # the baselines read splits the same way

ROLLOUT_STEPS = 3


def psnr(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean per-frame PSNR in dB (zoo's ``psnr``, max value 1) of (N, H, W, 1) frames."""
    import zoo

    metric = zoo.get_metric("psnr", 1)
    metric.update_state(truth, pred)
    return float(metric.result())


def rollout_sequence(stateful: Any, x: np.ndarray, steps: int) -> np.ndarray:
    """Predictions (N, steps, H, W, 1) of a stateful ``batchsize=N, timesteps=1`` model.

    Feeds ``x[:, :c]`` (c = T - steps + 1 true frames), then each prediction back.
    """
    import zoo

    context = x.shape[1] - steps + 1
    zoo.reset_states(stateful)
    frame = None
    for t in range(context):
        frame = np.asarray(stateful.predict_on_batch(x[:, t:t + 1]))
    predictions = [frame]
    for _ in range(steps - 1):
        frame = np.asarray(stateful.predict_on_batch(frame))
        predictions.append(frame)
    zoo.reset_states(stateful)
    return np.concatenate(predictions, axis=1)


def rollout_channels(model: Any, x: np.ndarray, steps: int) -> np.ndarray:
    """Predictions (N, steps, H, W, 1) of an image model from windows x (N, H, W, k).

    Each step drops the window's oldest channel and appends the prediction.
    """
    window, predictions = x, []
    for _ in range(steps):
        frame = np.asarray(model.predict_on_batch(window))
        predictions.append(frame[:, None])
        window = np.concatenate([window[..., 1:], frame], axis=-1)
    return np.concatenate(predictions, axis=1)


def psnr_by_step(truth: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """``{"test_psnr_step_1": dB, ...}`` from truth and predictions (N, steps, H, W, 1)."""
    return {f"test_psnr_step_{j + 1}": psnr(truth[:, j], predictions[:, j])
            for j in range(predictions.shape[1])}


def rollout_metrics(model: Any, model_name: str, model_options: dict[str, Any], info: Any,
                    test_ds: Any, steps: int = ROLLOUT_STEPS) -> dict[str, float]:
    """``test_psnr_step_1..n`` of a trained next-frame ``model`` on the test split; ``{}``
    when there is nothing to roll out (segmentation, no test split, a model whose output is
    smaller than its input, image data without a known window order).

    Args:
        model: the trained (stateless) model, its selected weights loaded.
        model_name, model_options: how it was built (to rebuild it stateful).
        info: the dataset's ``DatasetInfo``.
        test_ds: the batched test split, (x, y[, w]) elements.
        steps: n, capped by what the data allows.
    """
    import zoo

    if info.task != "next_frame" or not info.test_size:
        return {}
    x, y = dataset_arrays(test_ds)
    if y.shape[-3:-1] != x.shape[-3:-1]:
        return {}
    if info.kind == "sequence":
        steps = min(steps, x.shape[1])
        height, width, channels = info.input_shape[-3:]
        stateful, _, _ = zoo.get_model(model_name, height, width, channels, info.n_classes,
                                       **{**model_options, "stateful": True, "timesteps": 1,
                                          "batchsize": len(x)})
        stateful.set_weights(model.get_weights())
        context = x.shape[1] - steps + 1
        return psnr_by_step(y[:, context - 1:], rollout_sequence(stateful, x, steps))
    if info.options.get("layout") != "channels":
        return {}
    windows = int(info.options["frames"]) - int(info.options["stack"]) + 1
    steps = min(steps, windows)
    first = np.arange(0, len(x), windows)
    truth = np.stack([y[first + j] for j in range(steps)], axis=1)
    return psnr_by_step(truth, rollout_channels(model, x[first], steps))
