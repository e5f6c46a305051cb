"""The names zoobench gives its MLflow experiment and tags (read by the runs and the outbox)."""

from __future__ import annotations

EXPERIMENT = "zoobench"
TAG_SWEEP = "zoobench.sweep"
TAG_TRIAL = "zoobench.trial_id"
TAG_ROLE = "zoobench.role"
TAG_DATASET = "zoobench.dataset"  # a trial's dataset label (its ``dataset`` column)
TAG_RESULTS = "zoobench.results"  # the parent run's results folder: a sweep is name + folder
