"""Input-pipeline throughput next to training-step throughput: does the data starve the model?

For each dataset, times iterating the batched training set (after one warm-up epoch
that fills the cache), with and without augmentation, and times training steps of
a small zoo model on one in-memory batch (no input pipeline at all). The ratio
pipeline / model above 1 means the pipeline produces samples faster than the model
consumes them; with ``prefetch`` the two then overlap and training is compute bound.

    python tests/perf/input_pipeline.py                  # defaults below
    python tests/perf/input_pipeline.py --model unet_shallow --batch-size 16

Prints one line per dataset and augmentation setting.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import zoo  # noqa: E402

DATASETS = {
    "shapes 64x64": ("shapes", {"height": 64, "width": 64, "classes": 4}),
    "digits 32x32": ("digits", {"height": 32, "width": 32}),
    "moving_digits 8x32x32": ("moving_digits", {"height": 32, "width": 32, "frames": 8}),
}
SEQUENCE_MODEL = "lstm_shallow"


def pipeline_rate(ds, epochs: int) -> float:
    """Samples per second iterating ``ds`` for ``epochs`` epochs (after one warm-up epoch)."""
    for _ in ds:  # fills the cache, builds the graphs
        pass
    samples, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in ds:
            samples += int(batch[0].shape[0])
    return samples / (time.perf_counter() - start)


def model_rate(model_name: str, info, batch, steps: int) -> float:
    """Samples per second of ``train_on_batch`` on one fixed batch (no input pipeline)."""
    height, width, channels = info.input_shape[-3:]
    model, _, _ = zoo.get_model(model_name, height, width, channels, info.n_classes)
    loss = "binary_crossentropy" if info.n_classes == 1 else "categorical_crossentropy"
    model.compile(optimizer="adam", loss=zoo.get_loss(loss))
    x, y = batch[0].numpy(), batch[1].numpy()
    for _ in range(3):  # tracing and first-step allocation
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="testnet", help="image model (default testnet)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train", type=int, default=1024, help="training samples")
    parser.add_argument("--epochs", type=int, default=3, help="timed pipeline epochs")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    print(f"{'dataset':24} {'augment':>7} {'pipeline/s':>11} {'model':>14} {'model/s':>9} "
          f"{'ratio':>7}")
    for label, (name, options) in DATASETS.items():
        train = args.train // 4 if name == "moving_digits" else args.train
        model_name = SEQUENCE_MODEL if name == "moving_digits" else args.model
        rates = {}
        for augment in (False, True):
            ds, _, info = zoo.datasets.load(name, batch_size=args.batch_size, augment=augment,
                                            train=train, val=8, **options)
            rates[augment] = pipeline_rate(ds, args.epochs)
        rate_model = model_rate(model_name, info, next(iter(ds)), args.steps)
        for augment, rate in rates.items():
            print(f"{label:24} {str(augment):>7} {rate:11.0f} {model_name:>14} "
                  f"{rate_model:9.0f} {rate / rate_model:7.1f}", flush=True)
    print(f"(batch {args.batch_size}; ratio = pipeline samples/s / training samples/s; "
          f"{os.cpu_count()} CPUs; {np.__name__} {np.__version__}, keras {keras.__version__})")


if __name__ == "__main__":
    main()
