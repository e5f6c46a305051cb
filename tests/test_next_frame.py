"""Next-frame prediction for every network: stacked-frame data, spec checks, baselines,
rollout (issue 17). Each check is small (16x16 frames, untrained or random models)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

import zoo
from bench.common.errors import UsageError
from bench.results import baselines
from bench.run.trial import rollout
from bench.spec.model import parse_spec
from zoo.datasets.moving_digits import stack_frames

SMALL = {"height": 16, "width": 16, "digit_size": 8, "frames": 5, "train": 4, "val": 3,
         "test": 3, "target": "next_frame"}
IMAGE_MODELS = ["testnet", "unet", "unet_shallow", "segnet", "segnet_shallow"]
SEQUENCE_MODELS = ["lstm_unet", "lstm_shallow", "lstm_full", "lstm_next_frame"]


def arrays(dataset):
    """(x, y) of an unbatched dataset, stacked."""
    xs, ys = zip(*[(x, y) for x, y, *_ in dataset.as_numpy_iterator()], strict=True)
    return np.stack(xs), np.stack(ys)


def psnr_numpy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean over frames (H, W, 1) of 10 log10(1 / MSE)."""
    frames_y, frames_p = y.reshape(-1, *y.shape[-3:]), pred.reshape(-1, *pred.shape[-3:])
    mse = ((frames_y - frames_p) ** 2).mean(axis=(1, 2, 3))
    return float(np.mean(10 * np.log10(1 / np.maximum(mse, 1e-10))))


# ---------------------------------------------------------------------------- data
def test_stack_frames_windows_by_hand():
    frames = np.arange(2 * 5 * 1 * 1, dtype=np.float32).reshape(2, 5, 1, 1)
    x, y = stack_frames(frames, 3)
    assert x.shape == (4, 1, 1, 3) and y.shape == (4, 1, 1, 1)
    np.testing.assert_array_equal(x[:, 0, 0], [[0, 1, 2], [1, 2, 3], [5, 6, 7], [6, 7, 8]])
    np.testing.assert_array_equal(y[:, 0, 0, 0], [3, 4, 8, 9])


def test_channels_layout_stacks_the_sequence_layouts_frames():
    seq = zoo.datasets.load_splits("moving_digits", seed=3, **SMALL)
    chan = zoo.datasets.load_splits("moving_digits", seed=3, layout="channels", stack=3,
                                    **SMALL)
    assert chan.info.kind == "image" and chan.info.task == "next_frame"
    assert chan.info.input_shape == (16, 16, 3) and chan.info.target_shape == (16, 16, 1)
    windows = SMALL["frames"] - 3 + 1
    for split in ("val", "test"):
        xs, ys = arrays(getattr(seq, split))  # (N, T, H, W, 1), y[t] = x[t + 1]
        xc, yc = arrays(getattr(chan, split))
        assert len(xc) == len(xs) * windows
        for n in range(len(xs)):
            for t in range(windows):
                i = n * windows + t
                np.testing.assert_array_equal(xc[i], np.moveaxis(xs[n, t:t + 3, ..., 0], 0, -1))
                np.testing.assert_array_equal(yc[i], ys[n, t + 2])


def test_stacking_all_frames_gives_one_window_per_sequence():
    chan = zoo.datasets.load_splits("moving_digits", layout="channels", stack=5, **SMALL)
    assert chan.info.input_shape == (16, 16, 5) and chan.info.val_size == SMALL["val"]


@pytest.mark.parametrize("options, message", [
    ({"stack": 6}, "stack=6 asks for more stacked frames than a sequence has (frames=5)"),
    ({"target": "mask"}, "needs target: next_frame"),
    ({"layout": "grid"}, "layout='grid' is not allowed"),
])
def test_bad_layout_options(options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        zoo.datasets.load("moving_digits", **{**SMALL, "layout": "channels", **options})


def test_every_image_and_sequence_model_does_next_frames():
    for name in IMAGE_MODELS + SEQUENCE_MODELS:
        assert "next_frame" in zoo.describe_model(name).tasks, name
    assert zoo.describe_model("lstm_next_frame").tasks == ("next_frame",)
    assert zoo.describe_model("ladder").tasks == ("segmentation",)


# ---------------------------------------------------------------------------- spec
def spec(dataset: str, models: str = "[testnet]", extra: str = "") -> str:
    return (f"name: nf\ndataset: {dataset}\nmodels: {models}\n"
            f"losses: [binary_crossentropy]\n{extra}")


MD = "{name: moving_digits, height: 16, width: 16, digit_size: 8, frames: 5, train: 4, " \
     "val: 2, test: 2, target: next_frame"


def test_spec_accepts_every_network_on_next_frames_and_defaults_to_psnr():
    seq = parse_spec(spec(MD + "}", "[lstm_unet, lstm_shallow, lstm_full, lstm_next_frame]"))
    assert [m.name for m in seq.models] == SEQUENCE_MODELS
    assert (seq.metric, seq.mode) == ("val_psnr", "max")
    md32 = MD.replace("height: 16, width: 16", "height: 32, width: 32")  # segnet: 32
    chan = parse_spec(spec(md32 + ", layout: channels, stack: 3}",
                           f"[{', '.join(IMAGE_MODELS)}]"))
    assert len(chan.models) == 5


@pytest.mark.parametrize("text, message", [
    (spec("{name: shapes, height: 16, width: 16, layout: channels}"),
     "nf.yaml: dataset.layout: 'channels': dataset 'shapes' is image data without frames to "
     "stack; layout applies to sequence datasets (moving_digits)"),
    (spec(MD + ", layout: channels, stack: 9}"),
     "nf.yaml: dataset: dataset 'moving_digits': option stack=9 asks for more stacked frames "
     "than a sequence has (frames=5)"),
    (spec(MD + "}", "[lstm_shallow]", "metric: mean_iou\n"),
     "nf.yaml: metric: 'mean_iou' is a segmentation metric; dataset 'moving_digits' is "
     "next_frame data: use one of train_loss, val_loss, psnr, ssim, val_psnr, val_ssim"),
    (spec(MD + "}", "[lstm_shallow]", "metric: val_mean_iou\n"),
     "nf.yaml: metric: 'val_mean_iou' is a segmentation metric"),
    (spec(MD + ", layout: channels}", "[lstm_shallow]"),
     "nf.yaml: models[0]: model 'lstm_shallow' (sequence) needs a dataset of kind sequence"),
])
def test_bad_next_frame_specs_are_one_line_usage_errors(text, message):
    with pytest.raises(UsageError) as info:
        parse_spec(text, "nf.yaml")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------- baselines
def test_persistence_and_mean_frame_psnr_equal_numpy():
    scores = baselines.baseline_scores("moving_digits", SMALL, [0, 1])
    assert sorted(scores["model"]) == ["mean_frame", "mean_frame", "persistence", "persistence"]
    for seed in (0, 1):
        splits = zoo.datasets.load_splits("moving_digits", seed=seed, **SMALL)
        _, y_train = arrays(splits.train)
        for split in ("val", "test"):
            x, y = arrays(getattr(splits, split))
            got = scores.set_index(["model", "seed"])[f"{split}_psnr"]
            # Persistence: y[t] is predicted by x[t] (the same frame one step earlier).
            assert got["persistence", seed] == pytest.approx(psnr_numpy(y, x), abs=1e-4)
            mean = y_train.reshape(-1, 16, 16, 1).mean(axis=0)
            assert got["mean_frame", seed] == pytest.approx(
                psnr_numpy(y, np.broadcast_to(mean, y.shape)), abs=1e-4)


def test_persistence_on_stacked_frames_copies_the_last_channel():
    options = {**SMALL, "layout": "channels", "stack": 2}
    scores = baselines.baseline_scores("moving_digits", options, [0])
    x, y = arrays(zoo.datasets.load_splits("moving_digits", **options).test)
    value = scores.set_index("model").loc["persistence", "test_psnr"]
    assert value == pytest.approx(psnr_numpy(y, x[..., 1:]), abs=1e-4)


def test_baseline_rows_join_the_board_with_gain_over_persistence():
    board = pd.DataFrame({"sweep": ["s"], "dataset": ["moving_digits"], "model": ["testnet"],
                          "loss": ["bce"], "rank": [1], "count": [2],
                          "val_psnr_mean": [12.0], "test_psnr_mean": [11.0]})
    scores = pd.DataFrame({"model": ["persistence", "persistence", "mean_frame"],
                           "seed": [0, 1, 0], "val_psnr": [9.0, 11.0, 7.0],
                           "test_psnr": [8.0, 10.0, 6.0]})
    rows = baselines.baseline_rows(scores, "s", "moving_digits", "val_psnr", "max")
    out = baselines.add_gain(pd.concat([board.assign(baseline=False), rows],
                                       ignore_index=True))
    out = out.set_index("model")
    assert out.loc["persistence", "val_psnr_mean"] == 10.0
    assert out.loc["persistence", "count"] == 2 and out.loc["persistence", "loss"] == "-"
    assert out.loc["testnet", "gain_vs_persistence"] == pytest.approx(11.0 - 9.0)
    assert out.loc["mean_frame", "gain_vs_persistence"] == pytest.approx(6.0 - 9.0)
    assert out.loc["persistence", "baseline"] and not out.loc["testnet", "baseline"]


# ---------------------------------------------------------------------------- rollout
def test_sequence_rollout_equals_a_hand_fed_loop():
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n, t, steps = 2, 4, 3
    x = rng.random((n, t, 16, 16, 1), "float32")
    model, _, _ = zoo.get_model("lstm_shallow", 16, 16, 1, 1, filters=4)
    stateful, _, _ = zoo.get_model("lstm_shallow", 16, 16, 1, 1, filters=4, stateful=True,
                                   timesteps=1, batchsize=n)
    stateful.set_weights(model.get_weights())
    got = rollout.rollout_sequence(stateful, x, steps)
    # By hand, stateless: the whole sequence so far in, its last output frame appended.
    seq, expected = x[:, :t - steps + 1], []
    for _ in range(steps):
        frame = np.asarray(model.predict_on_batch(seq))[:, -1:]
        expected.append(frame)
        seq = np.concatenate([seq, frame], axis=1)
    np.testing.assert_allclose(got, np.concatenate(expected, axis=1), atol=1e-5)


def test_channels_rollout_metrics_follow_the_sequence_by_hand():
    import keras

    keras.utils.set_random_seed(0)
    options = {**SMALL, "layout": "channels", "stack": 3}
    splits = zoo.datasets.load_splits("moving_digits", batch_size=4, **options)
    model, _, _ = zoo.get_model("testnet", 16, 16, 3, 1)
    got = rollout.rollout_metrics(model, "testnet", {}, splits.info, splits.test, steps=5)
    assert sorted(got) == ["test_psnr_step_1", "test_psnr_step_2", "test_psnr_step_3"]
    # The same test sequences in the sequence layout: window = frames 0..2, then shift.
    xs, ys = arrays(zoo.datasets.load_splits("moving_digits", **SMALL).test)
    window = np.moveaxis(xs[:, 0:3, ..., 0], 1, -1)
    for j in range(3):
        frame = np.asarray(model.predict_on_batch(window))
        assert got[f"test_psnr_step_{j + 1}"] == pytest.approx(psnr_numpy(ys[:, 2 + j], frame),
                                                               abs=1e-4)
        window = np.concatenate([window[..., 1:], frame], axis=-1)


def test_sequence_rollout_metrics_score_the_last_frames():
    import keras

    keras.utils.set_random_seed(0)
    splits = zoo.datasets.load_splits("moving_digits", batch_size=2, **SMALL)
    model, _, _ = zoo.get_model("lstm_next_frame", 16, 16, 1, 1, filters=4)
    got = rollout.rollout_metrics(model, "lstm_next_frame", {"filters": 4}, splits.info,
                                  splits.test, steps=2)
    xs, ys = arrays(splits.test.unbatch())
    seq = xs[:, :4]
    for j in range(2):
        frame = np.asarray(model.predict_on_batch(seq))[:, -1:]
        assert got[f"test_psnr_step_{j + 1}"] == pytest.approx(
            psnr_numpy(ys[:, 3 + j], frame[:, 0]), abs=1e-4)
        seq = np.concatenate([seq, frame], axis=1)


# ---------------------------------------------------------------------------- your data
def test_npz_next_frame_task_takes_stacked_frames(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.random((10, 5, 16, 16), "float32")
    x, y = stack_frames(frames, 3)  # x (20, 16, 16, 3), y (20, 16, 16, 1)
    path = tmp_path / "frames.npz"
    np.savez(path, x=x, y=y)
    info = zoo.datasets.load("npz", path=str(path), task="next_frame")[2]
    assert (info.kind, info.task, info.input_shape, info.n_classes) == (
        "image", "next_frame", (16, 16, 3), 1)
    text = spec(f"{{name: npz, path: {path}, task: next_frame}}")
    assert parse_spec(text).metric == "val_psnr"
    np.savez(tmp_path / "masks.npz", x=x, y=(y[..., 0] > 0.5).astype(np.int64))
    with pytest.raises(ValueError, match="task next_frame needs y as frames"):
        zoo.datasets.load("npz", path=str(tmp_path / "masks.npz"), task="next_frame")
