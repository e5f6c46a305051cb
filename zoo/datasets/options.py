"""Validation of dataset options: one-line ``ValueError`` naming the option and dataset."""

from __future__ import annotations

from typing import Any


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


def split_indices(n: int, val_fraction: float, rng: Any) -> tuple[Any, Any]:
    """Shuffled (train, val) index arrays; each side keeps at least one sample when n >= 2."""
    order = rng.permutation(n)
    n_val = min(max(1, round(n * val_fraction)), n - 1) if n >= 2 else 0
    return order[n_val:], order[:n_val]
