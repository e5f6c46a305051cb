"""A spec becomes trials: the sweep's stages on Ray Tune, the trainable (``trial/``), progress,
live tables, the shared data cache, checkpoints, interruptions and attempts."""

from __future__ import annotations

import importlib
from typing import Any

# The room's public face, imported when first used (``bench.run.NAME``), so that
# importing one module of the room does not import the others' heavy dependencies.
_EXPORTS = {
    "run_sweep": ".sweep",
    "SweepOptions": ".sweep",
    "train_trial": ".trial.run",
    "SweepContext": ".trial.context",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
