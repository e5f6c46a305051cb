"""Validation of dataset options: one-line ``ValueError`` naming the option and dataset."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_int(dataset: str, name: str, value: Any, minimum: int = 1,
              maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum]; ``ValueError`` otherwise."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValueError(f"dataset {dataset!r}: option {name} must be an int, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        upper = f"..{maximum}" if maximum is not None else " or more"
        raise ValueError(
            f"dataset {dataset!r}: option {name}={value} is out of range; allowed {minimum}{upper}"
        )
    return value


def check_fraction(dataset: str, name: str, value: Any, *, low_open: bool = True,
                   high_open: bool = True) -> float:
    """``value`` as a float in (0, 1) (ends included when not open); ``ValueError`` otherwise."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"dataset {dataset!r}: option {name} must be a number, got {value!r}"
        ) from None
    low_ok = value > 0 if low_open else value >= 0
    high_ok = value < 1 if high_open else value <= 1
    if not (low_ok and high_ok):
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ValueError(
            f"dataset {dataset!r}: option {name}={value} must lie in {interval}"
        )
    return value


def check_choice(dataset: str, name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``choices``; ``ValueError`` listing them otherwise."""
    if value not in choices:
        allowed = ", ".join(map(repr, choices))
        raise ValueError(
            f"dataset {dataset!r}: option {name}={value!r} is not allowed; choose one of: {allowed}"
        )
    return value


def holdout_indices(dataset: str, n: int, fractions: dict[str, float],
                    rng: np.random.Generator,
                    split_rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Split ``n`` samples into ``train`` plus held-out splits, sorted index arrays.

    Args:
        dataset: dataset name, for error messages.
        n: number of samples in the pool.
        fractions: split name (``test``, ``val``) -> fraction of the pool it takes,
            its option being ``<name>_fraction``; each held-out split gets
            ``max(1, round(n * fraction))`` samples.
        rng: the trial's seeded generator: it draws every split but ``test``.
        split_rng: the generator of the dataset's ``split_seed``: it alone draws the
            ``test`` split, first, from the whole pool, so the test split is the same
            for every trial seed and does not move when ``val_fraction`` changes.
            None: ``rng`` draws ``test`` too.

    Returns:
        ``{"train": ..., **{name: ...}}``, disjoint, together ``range(n)``.

    Raises:
        ValueError: one line naming the dataset and options when a split would be
            empty (too few samples, or fractions adding up to the whole pool).
    """
    sizes = {name: max(1, round(n * fraction)) for name, fraction in fractions.items()}
    if n - sum(sizes.values()) < 1:
        given = " with ".join(f"{name}_fraction={fractions[name]}" for name in fractions)
        taken = ", ".join(f"{size} {name}" for name, size in sizes.items())
        raise ValueError(
            f"dataset {dataset!r}: option {given} leaves the train split empty "
            f"({n} samples: {taken}; each split needs at least one)"
        )
    splits: dict[str, np.ndarray] = {}
    rest = np.arange(n)
    if "test" in sizes:
        test = (split_rng or rng).permutation(n)[:sizes["test"]]
        splits["test"] = np.sort(test)
        rest = np.setdiff1d(rest, test)
    order, start = rest[rng.permutation(len(rest))], 0
    for name, size in sizes.items():
        if name != "test":
            splits[name] = np.sort(order[start:start + size])
            start += size
    splits["train"] = np.sort(order[start:])
    return {name: splits[name] for name in (*sizes, "train")}


def split_rng(dataset: str, split_seed: object, stream: int) -> np.random.Generator:
    """The generator of the test split: keyed by ``split_seed`` alone, never the trial seed."""
    return np.random.default_rng([check_int(dataset, "split_seed", split_seed, 0), stream])
