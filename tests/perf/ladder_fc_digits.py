"""The fully connected Ladder on scikit-learn's 8x8 digits with 10 labels per class.

Checks the ladder's shared pieces (:class:`zoo.models.ladder.LadderBase`: noisy
batch-normalised encoder, combinator, decoder normalisation, costs) on the paper's own
kind of task: Rasmus et al. 2015's permutation-invariant MNIST ladder
(784-1000-500-250-250-250-10, 100 labels), scaled to 64 inputs
(:func:`zoo.models.ladder_fc.build_ladder_fc`, 64-100-50-25-25-25-10).

Per seed: a stratified split of the 1,797 digits into train and test (``--test``
samples), 10 labelled samples per class drawn from train, every train sample also used
unlabelled. Each step is the paper's batch: ``--labelled-per-batch`` labelled samples
(cycled) plus as many unlabelled ones, weighted ``batch / labelled`` and 0 so that
Keras' batch mean of the supervised cost is the mean over the labelled samples, as in
the paper. Adam, learning rate ``--lr`` decayed linearly to 0 over the last third of
the steps (the authors' code). Variants, on the same splits, batches and initial
weights per seed:

- ``supervised``: no noise, no decoder;
- ``noise_only``: the noisy encoder, denoising costs all 0 (the paper's baseline);
- ``gamma``: the Γ-model, only the top level's cost (``--gamma-cost``);
- ``ladder``: the full ladder, the paper's costs ``[1000, 10, 0.1, 0.1, 0.1, 0.1, 0.1]``.

Prints test error (%) of the clean path per seed, mean ± std per variant, and
ladder-vs-other paired differences with the Wilcoxon signed-rank and paired t p-values.
Seeds run side by side in ``--jobs`` processes, one TensorFlow thread each.

    python tests/perf/ladder_fc_digits.py              # the README's table
    python tests/perf/ladder_fc_digits.py --seeds 0 1 --epochs 50
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

VARIANTS = ("supervised", "noise_only", "gamma", "ladder")
N_LEVELS = 7


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; its defaults are the figures quoted in the README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--test", type=int, default=500, help="test samples")
    parser.add_argument("--epochs", type=int, default=100,
                        help="passes over the (unlabelled) training set")
    parser.add_argument("--labelled-per-batch", type=int, default=50)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--noise-std", type=float, default=0.3)
    parser.add_argument("--widths", type=int, nargs="+", default=[100, 50, 25, 25, 25])
    parser.add_argument("--costs", type=float, nargs="+",
                        default=[1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1],
                        help="the full ladder's denoising costs, input .. top")
    parser.add_argument("--gamma-cost", type=float, default=0.5,
                        help="the Γ-model's top cost (the authors' 100-label setting)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--jobs", type=int, default=2, help="seeds run side by side")
    return parser.parse_args(argv)


def variant_options(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Options of ``build_ladder_fc`` for a variant."""
    levels = len(args.widths) + 2
    zeros = [0.0] * levels
    gamma = [*zeros[:-1], args.gamma_cost]
    return {
        "supervised": {"noise_std": 0.0, "denoising_costs": zeros},
        "noise_only": {"noise_std": args.noise_std, "denoising_costs": zeros},
        "gamma": {"noise_std": args.noise_std, "denoising_costs": gamma},
        "ladder": {"noise_std": args.noise_std, "denoising_costs": list(args.costs)},
    }[name]


def split(seed: int, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Train/test split, labelled indices into train: x in [0, 1] (N, 64), y int (N,)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=args.test, stratify=digits.target, random_state=seed
    )
    rng = np.random.default_rng(seed)
    labelled = np.concatenate([
        rng.choice(np.flatnonzero(y_train == k), args.labels_per_class, replace=False)
        for k in range(10)
    ])
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
            "labelled": labelled}


def batches(data: dict[str, np.ndarray], seed: int, args: argparse.Namespace) -> Any:
    """tf.data of (x, one-hot y, sample weight): per step L labelled + L unlabelled."""
    import tensorflow as tf

    rng = np.random.default_rng(seed + 1000)
    n_train, per = len(data["x_train"]), args.labelled_per_batch
    steps_per_epoch = n_train // per
    unlabelled = np.concatenate([rng.permutation(n_train)[: steps_per_epoch * per]
                                 for _ in range(args.epochs)])
    n_steps = len(unlabelled) // per
    cycles = -(-n_steps * per // len(data["labelled"]))
    labelled = np.concatenate([rng.permutation(data["labelled"]) for _ in range(cycles)])
    index = np.concatenate([labelled[: n_steps * per].reshape(n_steps, per),
                            unlabelled.reshape(n_steps, per)], axis=1).reshape(-1)
    # Weight batch/labelled: Keras divides the weighted sum by the batch size.
    weight = np.tile(np.r_[np.full(per, 2.0), np.zeros(per)], n_steps).astype(np.float32)
    x = tf.constant(data["x_train"])
    y = tf.one_hot(data["y_train"], 10)
    ds = tf.data.Dataset.from_tensor_slices((index.astype(np.int32), weight)).batch(2 * per)
    return ds.map(lambda i, w: (tf.gather(x, i), tf.gather(y, i), w)), n_steps


def train_one(job: tuple[str, int, argparse.Namespace]) -> tuple[str, int, float, float]:
    """Train one variant on one seed; return (variant, seed, test error %, seconds)."""
    import keras

    from zoo.models.ladder_fc import build_ladder_fc

    name, seed, args = job
    start = time.perf_counter()
    data = split(seed, args)
    ds, n_steps = batches(data, seed, args)
    keras.utils.set_random_seed(seed)
    model = build_ladder_fc(64, 10, widths=args.widths, seed=seed,
                            **variant_options(name, args))
    decay_start = n_steps * 2 // 3
    lr = linear_tail(args.lr, decay_start, n_steps)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy")
    model.fit(ds, epochs=1, verbose=0)
    probs = model.predict(data["x_test"], batch_size=len(data["x_test"]), verbose=0)
    error = 100.0 * float(np.mean(probs.argmax(-1) != data["y_test"]))
    return name, seed, error, time.perf_counter() - start


def linear_tail(lr: float, start: int, end: int) -> Any:
    """Learning rate ``lr`` until step ``start``, then linear decay to 0 at ``end``."""
    import keras

    class LinearTail(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step: Any) -> Any:
            tail = (end - keras.ops.cast(step, "float32")) / max(end - start, 1)
            return lr * keras.ops.clip(tail, 0.0, 1.0)

    return LinearTail()


def paired(a: np.ndarray, b: np.ndarray, better: str = "lower") -> str:
    """``a - b`` per seed: mean ± std, seeds where ``a`` is better (``lower`` or
    ``higher``), Wilcoxon signed-rank and paired t p-values (two-sided)."""
    from scipy import stats

    diff = a - b
    wins = int(np.sum(diff < 0 if better == "lower" else diff > 0))
    wilcoxon = stats.wilcoxon(a, b).pvalue if np.any(diff != 0) else 1.0
    t = stats.ttest_rel(a, b).pvalue if np.any(diff != 0) else 1.0
    return (f"{diff.mean():+.3f} ± {std(diff):.3f}  better on {wins}/{len(diff)} seeds"
            f"  Wilcoxon p={wilcoxon:.3g}  paired t p={t:.3g}")


def std(values: np.ndarray) -> float:
    """Sample standard deviation over seeds (0 for one seed)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def run(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Test error (%) per variant, one entry per seed in ``args.seeds`` order."""
    jobs = [(name, seed, args) for seed in args.seeds for name in args.variants]
    errors: dict[str, dict[int, float]] = {name: {} for name in args.variants}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for name, seed, error, seconds in pool.map(train_one, jobs):
            errors[name][seed] = error
            print(f"seed {seed} {name:>10}: test error {error:5.2f}%  ({seconds:.0f} s)",
                  flush=True)
    return {name: np.array([by_seed[s] for s in args.seeds]) for name, by_seed in errors.items()}


def table(errors: dict[str, np.ndarray], args: argparse.Namespace) -> str:
    """The README's table: mean ± std per variant, paired tests of the ladder."""
    lines = [
        f"FC ladder 64-{'-'.join(map(str, args.widths))}-10 on digits, "
        f"{args.labels_per_class} labels/class, {args.test} test, {args.epochs} epochs, "
        f"noise {args.noise_std}, costs {args.costs}, Γ cost {args.gamma_cost}, "
        f"seeds {args.seeds}",
        f"{'variant':>10}  test error % (mean ± std over seeds)",
    ]
    for name, values in errors.items():
        lines.append(f"{name:>10}  {values.mean():5.2f} ± {std(values):.2f}")
    if "ladder" in errors:
        for other in errors:
            if other != "ladder":
                lines.append(f"ladder - {other:>10}: {paired(errors['ladder'], errors[other])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Seeds side by side, one TensorFlow thread each; the forked workers load TensorFlow.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    start = time.perf_counter()
    errors = run(args)
    print()
    print(table(errors, args))
    print(f"command: python {shlex.join(sys.argv)}")
    print(f"seconds: {time.perf_counter() - start:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
