"""MLflow: a sweep's parent run and each trial's run, the outbox that keeps what a dead
server did not take, links into the UI, and the model registry."""

from __future__ import annotations

from bench.common.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "Tracking": ".runs",
    "TrialRun": ".runs",
    "start_sweep": ".runs",
    "default_tracking_uri": ".runs",
    "Outbox": ".outbox",
    "ui_lines": ".ui_links",
    "register_best": ".model_registry",
})
