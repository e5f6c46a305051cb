"""A configuration: one cell (dataset x model x loss) with one value of every hyperparameter.

The seeds of a configuration share its hyperparameters (``bench.spec.plan``), and the
records and the leaderboard group trials by ``config_id`` (``docs/trust.md``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def _canonical(value: Any) -> Any:
    """A hyperparameter value as JSON keeps it: NumPy scalars as Python, integral numbers as
    ints (``8`` and ``8.0`` after a Parquet round trip are one value), booleans as they are."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return int(value) if float(value).is_integer() else float(value)


def config_id(dataset: str | None, model: str, loss: str, params: Mapping[str, Any]) -> str:
    """A configuration's id: 12 hex digits of a SHA-256 of its cell and hyperparameter values.

    The same for every seed of a configuration, for the same spec run again, and for a
    protocol's tune trial and the final trials that retrain its choice; ``params`` are the
    hyperparameters by name (``bench.spec.model.PARAMS``: ``lr``, ``batch_size``, ...).
    """
    key = json.dumps([dataset or "", str(model), str(loss),
                      sorted((str(k), _canonical(v)) for k, v in params.items())],
                     default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:12]
