"""What every trial of a sweep shares (the names its checkpoint uses: ``bench.common.names``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.tracking.runs import Tracking


@dataclass(frozen=True)
class SweepContext:
    """What every trial of a sweep shares (passed with ``tune.with_parameters``).

    ``datasets``, ``models`` and ``losses`` map the labels in a trial's config to
    registry names and options, e.g. ``"focal(gamma=2)" -> ("focal", {"gamma": 2})``,
    ``"digits[height=16]" -> ("digits", {"height": 16, ...})``; a config without a
    ``dataset`` (a sweep of one) means the first dataset (``dataset_of``).
    ``nsd_tolerance`` is the normalised surface Dice tolerance in pixels of the
    per-case test metrics (the spec's ``nsd_tolerance``). ``plugins``: the spec's plugin
    modules, which register the models, losses and datasets the labels may name.
    ``data_cache`` is where trials share each dataset's arrays (None: every trial builds
    its own). ``max_failures`` is the spec's (the trial's own losses it may be retried
    after); ``run_token`` names this driver run, so a trial tells a retry from a resumed
    sweep (``bench.run.attempts``). ``log_models``: the spec's (``none``: a tested trial
    logs its metrics and picture to MLflow, not its model).
    """

    sweep: str
    datasets: dict[str, tuple[str, dict[str, Any]]]
    models: dict[str, tuple[str, dict[str, Any]]]
    losses: dict[str, tuple[str, dict[str, Any]]]
    epochs: int
    metric: str
    mode: str
    patience: int | None
    time_budget_s: float | None
    mixed_precision: str
    xla: bool
    cpu: float
    gpu: float
    tracking: Tracking
    nsd_tolerance: float = 1.0
    plugins: tuple[str, ...] = ()  # modules each trial imports first (bench.spec.plugins)
    data_cache: str | None = None  # folder of the sweep's dataset arrays (bench.run.data_cache)
    gpu_memory_mb: int | None = None  # each trial's GPU memory cap; None: memory growth
    max_failures: int = 2
    run_token: str = ""
    log_models: str = "all"  # "none": tested trials log no MLflow model (the spec's)

    def dataset_of(self, config: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """``(label, registry name, options)`` of the dataset a trial's config names."""
        label = config.get("dataset") or next(iter(self.datasets))
        name, options = self.datasets[label]
        return label, name, options
