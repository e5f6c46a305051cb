"""A spec becomes trials: the sweep's stages on Ray Tune, the trainable (``trial/``), progress,
live tables, the shared data cache, checkpoints, interruptions and attempts."""

from __future__ import annotations

from bench.common.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "run_sweep": ".sweep",
    "SweepOptions": ".sweep",
    "train_trial": ".trial.run",
    "SweepContext": ".trial.context",
})
