"""Does the Ladder network learn from unlabelled masks? Ladder vs the same net supervised only.

A segmentation task where only a fraction of the training masks are labelled. Every
model is ``zoo.get_model("ladder", ...)`` with the same encoder, trained with the same
optimiser, batches and epochs on the same ``(x, y, sample_weight)`` batches (weight 0
marks an unlabelled sample, whose mask is all zeros; by default every batch holds 50
labelled and 50 unlabelled samples, as in the paper):

- ``supervised``: ``denoising_costs`` all 0 and ``noise_std=0`` — the encoder trained on
  the labelled masks only (unlabelled samples reach it only through batch statistics);
- ``noise_only``: the noisy encoder without the decoder (``denoising_costs`` all 0): what
  the ladder's noise alone does, still supervised only;
- ``ladder``: the noise and the denoising costs (``--costs``), which use every image;
- ``ladder_paper``: the same with the paper's cost shape ``[1000, 10, 0.1, ..., 0.1]``
  (``zoo.models.ladder_fc.PAPER_DENOISING_COSTS``; Keras averages the supervised cost
  over the whole batch, so with half the batch labelled these weigh twice the paper's).

Prints, per seed and as mean ± standard deviation over seeds, the validation mean IoU
(over the classes present in truth or prediction) and pixel accuracy of the clean
(inference) path, the labelled fraction, the command and the seconds taken, and the
ladder's paired differences with the other variants over seeds (Wilcoxon signed-rank
and paired t p-values); with ``--curve-every N`` also the validation mean IoU every N
epochs. Seeds run side by side in ``--jobs`` processes, one TensorFlow thread each.

Data: ``zoo.datasets.load("digits", labelled_fraction=..., labelled_per_batch=...)`` —
scikit-learn's 8x8 handwritten digits placed on a canvas, each stroke pixel labelled
digit + 1, 0 elsewhere (11 classes); validation canvases use source digits never seen in
training. Metrics: ``zoo.get_metric("mean_iou", 11)`` and ``"pixel_accuracy"``.

    python tests/perf/ladder_semi_supervised.py          # the README's table, ~30 min, 2 cores
    python tests/perf/ladder_semi_supervised.py --seeds 0 --epochs 20 --curve-every 5
    python tests/perf/ladder_semi_supervised.py --seeds 0 1 2 3 4 --train 1000 \
        --fraction 0.1 --epochs 20 --jobs 2     # the README's 5-seed paired table
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "--jobs" in sys.argv or os.environ.get("TF_NUM_INTRAOP_THREADS") == "1":
    # Seeds side by side: one TensorFlow thread each (set before TensorFlow loads).
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = "1"

import keras  # noqa: E402
import numpy as np  # noqa: E402

import zoo  # noqa: E402
from zoo.models.ladder import DEFAULT_DENOISING_COSTS, N_LEVELS  # noqa: E402
from zoo.models.ladder_fc import PAPER_DENOISING_COSTS  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ladder_fc_digits import paired, std  # noqa: E402

VARIANTS = ("supervised", "noise_only", "ladder", "ladder_paper")


def load_data(args: argparse.Namespace, seed: int) -> tuple[Any, Any, Any]:
    """(train, val, info): batched ``(x, y, sample_weight)`` datasets of ``digits``."""
    return zoo.datasets.load(
        "digits", batch_size=args.batch_size, seed=seed, labelled_fraction=args.fraction,
        height=args.size, width=args.size, train=args.train, val=args.val,
        digits_per_image=args.digits_per_image, digit_size=args.digit_size,
        labelled_per_batch=args.labelled_per_batch,
    )


def train(
    options: dict, data: tuple[Any, Any, Any], args: argparse.Namespace, seed: int
) -> tuple[float, float]:
    """Build the ladder with ``options``, fit it, return validation (mean IoU, pixel accuracy)."""
    train_ds, val_ds, info = data
    keras.utils.set_random_seed(seed)
    height, width, channels = info.input_shape
    model, _, _ = zoo.get_model(
        "ladder", height, width, channels, info.n_classes, filters=args.filters, seed=seed,
        **options,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss=zoo.get_loss("categorical_crossentropy"),
        metrics=[zoo.get_metric("mean_iou", info.n_classes),
                 zoo.get_metric("pixel_accuracy", info.n_classes)],
    )
    history = model.fit(train_ds, epochs=args.epochs, shuffle=False, verbose=0,
                        validation_data=val_ds if args.curve_every else None,
                        validation_freq=args.curve_every or 1)  # zoo.datasets shuffles
    if args.curve_every:
        curve = history.history["val_mean_iou"]
        print(f"  val mean IoU every {args.curve_every} epochs: "
              f"{' '.join(f'{v:.3f}' for v in curve)}", flush=True)
    scores = model.evaluate(val_ds, verbose=0, return_dict=True)
    return float(scores["mean_iou"]), float(scores["pixel_accuracy"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; its defaults are the figures quoted in the README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fraction", type=float, default=0.05, help="labelled fraction")
    parser.add_argument("--train", type=int, default=2000, help="training samples")
    parser.add_argument("--val", type=int, default=400, help="validation samples")
    parser.add_argument("--size", type=int, default=16, help="image height and width")
    parser.add_argument("--digits-per-image", type=int, default=1)
    parser.add_argument("--digit-size", type=int, default=12, help="digit height in pixels")
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--labelled-per-batch", type=int, default=50,
                        help="labelled samples in every batch (0: as they fall)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--variants", nargs="+", default=["supervised", "noise_only", "ladder"],
                        choices=VARIANTS)
    parser.add_argument("--jobs", type=int, default=1, help="seeds run side by side")
    parser.add_argument("--curve-every", type=int, default=0,
                        help="also print the validation mean IoU every N epochs (0: off)")
    parser.add_argument("--noise-std", type=float, default=0.3)
    parser.add_argument(
        "--costs", type=float, nargs=N_LEVELS, default=list(DEFAULT_DENOISING_COSTS),
        help=f"the ladder's denoising_costs, {N_LEVELS} numbers (input .. top)",
    )
    return parser.parse_args(argv)


def variants(args: argparse.Namespace) -> dict[str, dict]:
    """The models compared: options of ``get_model("ladder", ...)``."""
    everything = {
        "supervised": {"noise_std": 0.0, "denoising_costs": [0.0] * N_LEVELS},
        "ladder": {"noise_std": args.noise_std, "denoising_costs": list(args.costs)},
        # What the noise alone does: the noisy encoder, no decoder.
        "noise_only": {"noise_std": args.noise_std, "denoising_costs": [0.0] * N_LEVELS},
        "ladder_paper": {"noise_std": args.noise_std,
                         "denoising_costs": list(PAPER_DENOISING_COSTS)},
    }
    return {name: everything[name] for name in args.variants}


def train_job(job: tuple[str, int, argparse.Namespace]) -> tuple[str, int, float, float, float]:
    """One variant on one seed: (variant, seed, mean IoU, pixel accuracy, seconds)."""
    name, seed, args = job
    t0 = time.perf_counter()
    iou, acc = train(variants(args)[name], load_data(args, seed), args, seed)
    return name, seed, iou, acc, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    jobs = [(name, seed, args) for seed in args.seeds for name in variants(args)]
    by_seed: dict[str, dict[int, tuple[float, float]]] = {name: {} for name in variants(args)}
    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        for name, seed, iou, acc, seconds in pool.map(train_job, jobs):
            by_seed[name][seed] = (iou, acc)
            print(f"seed {seed} {name:>12}: val mean IoU {iou:.3f}  pixel accuracy {acc:.3f}"
                  f"  ({seconds:.0f} s)", flush=True)
    results = {name: [values[s] for s in args.seeds] for name, values in by_seed.items()}
    print(f"\nlabelled fraction {args.fraction} of {args.train} training images "
          f"({round(args.fraction * args.train)} masks), {args.val} validation, "
          f"{args.size}x{args.size}, {args.epochs} epochs, seeds {args.seeds}, batch "
          f"{args.batch_size} ({args.labelled_per_batch or 'any number'} labelled per batch)")
    print(f"ladder denoising_costs {args.costs}, noise_std {args.noise_std}")
    for name, values in results.items():
        iou, acc = np.array(values).T
        print(f"{name:>12}: val mean IoU {iou.mean():.3f} ± {std(iou):.3f}   "
              f"pixel accuracy {acc.mean():.3f} ± {std(acc):.3f}")
    ious = {name: np.array([v[0] for v in values]) for name, values in results.items()}
    for ladder in ("ladder", "ladder_paper"):
        for other in ious:
            if ladder in ious and other != ladder and not other.startswith("ladder"):
                test = paired(ious[ladder], ious[other], better="higher")
                print(f"{ladder} - {other:>10} mean IoU: {test}")
    print(f"command: python {shlex.join(sys.argv)}")
    print(f"seconds: {time.perf_counter() - start:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
