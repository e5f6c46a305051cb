"""MLflow: a sweep's parent run and each trial's run, the outbox that keeps what a dead
server did not take, links into the UI, and the model registry."""

from __future__ import annotations

import importlib
from typing import Any

# The room's public face, imported when first used (``bench.tracking.NAME``), so that
# importing one module of the room does not import the others' heavy dependencies.
_EXPORTS = {
    "Tracking": ".runs",
    "TrialRun": ".runs",
    "start_sweep": ".runs",
    "default_tracking_uri": ".runs",
    "Outbox": ".outbox",
    "ui_lines": ".ui_links",
    "register_best": ".model_registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
