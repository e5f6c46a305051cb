"""Does the Ladder network learn from unlabelled masks? Ladder vs the same net supervised only.

A segmentation task where only a fraction of the training masks are labelled. Both
models are ``zoo.get_model("ladder", ...)`` with the same encoder, trained with the same
optimiser, batches and epochs on the same ``(x, y, sample_weight)`` arrays (weight 0 marks
an unlabelled sample, whose mask is all zeros):

- ``supervised``: ``denoising_costs`` all 0 and ``noise_std=0`` — the encoder trained on
  the labelled masks only (unlabelled samples reach it only through batch statistics);
- ``ladder``: the default noise and denoising costs, which use every image.

Prints, per seed and as mean ± standard deviation over seeds, the validation mean IoU
(over the classes present in the validation masks) and pixel accuracy of the clean
(inference) path, the labelled fraction, the command and the seconds taken.

Data: the ``digits`` dataset of ``zoo.datasets`` (scikit-learn's 8x8 handwritten digits
placed on a larger canvas, the mask's class being the digit + 1 on its strokes, 0
elsewhere); while that dataset is not available the same construction is made here.

    python tests/perf/ladder_semi_supervised.py                 # ~ a few minutes, 2 cores
    python tests/perf/ladder_semi_supervised.py --seeds 0 1 2 --epochs 30
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import zoo  # noqa: E402
from zoo.models.ladder import DEFAULT_DENOISING_COSTS, N_LEVELS  # noqa: E402

N_CLASSES = 11  # background + digits 0..9


@dataclass
class Split:
    """x (N, H, W, 1) float32 in [0, 1]; y (N, H, W, K) one-hot; w (N,) 1.0 labelled."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray


def make_digits(
    n: int, size: int, labelled_fraction: float, seed: int, part: str
) -> Split:
    """Digits segmentation made from scikit-learn's digits, one digit per image.

    Each 8x8 digit is scaled 2x (16x16) and placed at a random position of a
    ``size`` x ``size`` canvas; its strokes (grey level >= 0.5) get class digit + 1.
    ``part`` "train" draws digits from the first 80% of scikit-learn's images,
    "val" from the rest, so no digit image is shared. A random ``labelled_fraction``
    of the samples keep their masks (weight 1), the rest get an all-zero mask and
    weight 0.
    """
    images, targets = load_digits(return_X_y=True)
    images = images.reshape(-1, 8, 8) / 16.0
    cut = int(0.8 * len(images))
    pool = np.arange(cut) if part == "train" else np.arange(cut, len(images))
    rng = np.random.default_rng([seed, 0 if part == "train" else 1])
    picks = rng.choice(pool, size=n, replace=n > len(pool))
    x = np.zeros((n, size, size, 1), np.float32)
    labels = np.zeros((n, size, size), np.int64)
    for i, j in enumerate(picks):
        digit = np.kron(images[j], np.ones((2, 2)))
        r, c = rng.integers(0, size - 16 + 1, size=2)
        x[i, r : r + 16, c : c + 16, 0] = digit
        labels[i, r : r + 16, c : c + 16] = np.where(digit >= 0.5, targets[j] + 1, 0)
    y = np.eye(N_CLASSES, dtype=np.float32)[labels]
    w = np.ones(n, np.float32)
    if labelled_fraction < 1.0:
        n_labelled = max(1, round(labelled_fraction * n))
        w[:] = 0.0
        w[rng.choice(n, size=n_labelled, replace=False)] = 1.0
        y[w == 0] = 0.0
    return Split(x, y, w)


def load_data(n_train: int, n_val: int, size: int, fraction: float, seed: int) -> tuple:
    """(train, val) Splits: from ``zoo.datasets`` when it has ``digits``, else made here."""
    return (
        make_digits(n_train, size, fraction, seed, "train"),
        make_digits(n_val, size, 1.0, seed, "val"),
    )


def scores(model: keras.Model, val: Split) -> tuple[float, float]:
    """(mean IoU over the classes present in the validation masks, pixel accuracy)."""
    pred = np.argmax(model.predict(val.x, batch_size=64, verbose=0), axis=-1).ravel()
    true = np.argmax(val.y, axis=-1).ravel()
    confusion = np.bincount(true * N_CLASSES + pred, minlength=N_CLASSES**2).reshape(
        N_CLASSES, N_CLASSES
    )
    intersection = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - intersection
    present = confusion.sum(1) > 0
    return float(np.mean(intersection[present] / union[present])), float(np.mean(pred == true))


def train(options: dict, train_split: Split, val: Split, args: argparse.Namespace, seed: int):
    """Build the ladder with ``options``, fit it, return (mean IoU, pixel accuracy)."""
    keras.utils.set_random_seed(seed)
    model, _, _ = zoo.get_model(
        "ladder", args.size, args.size, 1, N_CLASSES, filters=args.filters, seed=seed, **options
    )
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss=zoo.get_loss("categorical_crossentropy"),
    )
    model.fit(
        train_split.x, train_split.y, sample_weight=train_split.w,
        batch_size=args.batch_size, epochs=args.epochs, shuffle=True, verbose=0,
    )
    return scores(model, val)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; its defaults are the figures quoted in the README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--fraction", type=float, default=0.1, help="labelled fraction")
    parser.add_argument("--train", type=int, default=1000, help="training samples")
    parser.add_argument("--val", type=int, default=300, help="validation samples")
    parser.add_argument("--size", type=int, default=32, help="image height and width")
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--noise-std", type=float, default=0.3)
    parser.add_argument(
        "--costs", type=float, nargs=N_LEVELS, default=list(DEFAULT_DENOISING_COSTS),
        help=f"the ladder's denoising_costs, {N_LEVELS} numbers (input .. top)",
    )
    return parser.parse_args(argv)


def variants(args: argparse.Namespace) -> dict[str, dict]:
    """The two models compared: options of ``get_model("ladder", ...)``."""
    return {
        "supervised": {"noise_std": 0.0, "denoising_costs": [0.0] * N_LEVELS},
        "ladder": {"noise_std": args.noise_std, "denoising_costs": list(args.costs)},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants(args)}
    for seed in args.seeds:
        train_split, val = load_data(args.train, args.val, args.size, args.fraction, seed)
        for name, options in variants(args).items():
            t0 = time.perf_counter()
            iou, acc = train(options, train_split, val, args, seed)
            results[name].append((iou, acc))
            print(
                f"seed {seed} {name:>10}: val mean IoU {iou:.3f}  pixel accuracy {acc:.3f}"
                f"  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    print(f"\nlabelled fraction {args.fraction} of {args.train} training images "
          f"({int(round(args.fraction * args.train))} masks), {args.val} validation, "
          f"{args.size}x{args.size}, {args.epochs} epochs, seeds {args.seeds}")
    print(f"ladder denoising_costs {args.costs}, noise_std {args.noise_std}")
    for name, values in results.items():
        iou, acc = np.array(values).T
        print(f"{name:>10}: val mean IoU {iou.mean():.3f} ± {iou.std():.3f}   "
              f"pixel accuracy {acc.mean():.3f} ± {acc.std():.3f}")
    gain = np.array([v[0] for v in results["ladder"]]) - [v[0] for v in results["supervised"]]
    print(f"ladder - supervised mean IoU per seed: {np.round(gain, 3).tolist()}")
    print(f"command: python {shlex.join(sys.argv)}")
    print(f"seconds: {time.perf_counter() - start:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
