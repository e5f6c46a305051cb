"""Everything a report section reads, loaded and aggregated once."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common.names import CASES_FILE
from bench.report.html import esc
from bench.results import leaderboard as lb
from bench.results.baselines import add_gain, stored_baselines


@lru_cache(maxsize=8)
def _class_names(results_dir: Path, sweep: str) -> pd.DataFrame:
    """``dataset, class_index, class_name`` of one sweep's ``cases.parquet`` (distinct rows;
    empty when there is none or it cannot be read)."""
    path = results_dir / CASES_FILE
    columns = ["dataset", "class_index", "class_name"]
    if not path.exists():
        return pd.DataFrame(columns=columns)
    try:
        cases = pd.read_parquet(path, columns=columns, filters=[("sweep", "==", sweep)])
    except (OSError, ValueError, KeyError):  # an old or damaged table: fall back to numbers
        return pd.DataFrame(columns=columns)
    return cases.drop_duplicates().reset_index(drop=True)


@dataclass(frozen=True)
class ReportContext:
    """One sweep's results as the report sections see them.

    Attributes:
        results_dir: the results folder (pictures' paths are relative to it).
        sweep: the sweep's name.
        trials: its trials, one row per trial (schema of ``trials.parquet``).
        history: its history, one row per trial x epoch, with the trial's ``model`` and
            ``loss_fn`` (the loss function; history's ``loss`` is the training loss value).
        board: its leaderboard (:func:`bench.results.leaderboard.aggregate`), best first.
        baselines: the baseline rows the sweep stored beside its leaderboard (next frames:
            ``persistence``, ``mean_frame``; :func:`bench.results.baselines.stored_baselines`),
            scored by ``metric``; empty for other sweeps.
        metric, mode: what the sweep ranks by.
        created: when the report was made (UTC).
    """

    results_dir: Path
    sweep: str
    trials: pd.DataFrame
    history: pd.DataFrame
    board: pd.DataFrame
    metric: str
    mode: str
    baselines: pd.DataFrame = field(default_factory=pd.DataFrame)
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @classmethod
    def build(cls, results_dir: Path, sweep: str, trials: pd.DataFrame,
              history: pd.DataFrame) -> ReportContext:
        """Aggregate ``trials`` and attach each history row's model and loss function."""
        board = lb.aggregate(trials)
        with_rows = stored_baselines(results_dir, board)  # what `zoobench leaderboard` adds
        baselines = with_rows[with_rows["baseline"]] if "baseline" in with_rows \
            else pd.DataFrame()
        if len(history) and "trial_id" in history:
            keys = trials[["trial_id", "model", "loss"]].rename(columns={"loss": "loss_fn"})
            history = history.drop(columns=[c for c in ("model", "loss_fn") if c in history])
            history = history.merge(keys, on="trial_id", how="inner")
        return cls(results_dir=Path(results_dir), sweep=sweep, trials=trials,
                   history=history, board=board, metric=str(board["metric"].iloc[0]),
                   mode=str(board["mode"].iloc[0]), baselines=baselines)

    @property
    def leaderboard(self) -> pd.DataFrame:
        """``board`` and, after its rows, the ``baselines`` with their ``gain_vs_persistence``
        (and the trained rows' gain), as ``zoobench leaderboard`` prints it."""
        if self.baselines.empty:
            return self.board
        return add_gain(pd.concat([self.board.assign(baseline=False), self.baselines],
                                  ignore_index=True).astype({"rank": "Int64"}))

    @property
    def finished(self) -> pd.DataFrame:
        """The ranked trials that entered the statistics (``leaderboard.finished_mask``:
        completed, or stopped by patience or time budget; the final stage under a protocol)."""
        ranked = lb.final_stage(self.trials)
        return ranked[lb.finished_mask(ranked)]

    @property
    def datasets(self) -> list[str]:
        return sorted(self.trials["dataset"].astype(str).unique())

    def only(self, dataset: str) -> ReportContext:
        """This sweep's trials, history and leaderboard rows of one ``dataset`` (its
        ranks are already per dataset)."""
        trials = self.trials[self.trials["dataset"].astype(str) == dataset]
        history = self.history
        if len(history) and "trial_id" in history:
            history = history[history["trial_id"].isin(trials["trial_id"])]
        board = self.board[self.board["dataset"].astype(str) == dataset]
        baselines = self.baselines
        if len(baselines) and "dataset" in baselines:
            baselines = baselines[baselines["dataset"].astype(str) == dataset]
        return replace(self, trials=trials.reset_index(drop=True),
                       history=history.reset_index(drop=True),
                       board=board.reset_index(drop=True),
                       baselines=baselines.reset_index(drop=True))

    def per_dataset(self, render: Callable[[ReportContext], str]) -> str:
        """``render(self)`` for a sweep of one dataset; for several, ``render`` of each
        dataset's part (``only``) under a heading naming the dataset."""
        if len(self.datasets) <= 1:
            return render(self)
        return "".join(f'<h3 class="dataset">{esc(dataset)}</h3>' + render(self.only(dataset))
                       for dataset in self.datasets)

    @property
    def versions(self) -> dict[str, Any]:
        """Library versions the trials ran with (``versions`` column, JSON), or {}."""
        raw = lb.first_value(self.trials, "versions")
        try:
            return dict(json.loads(raw)) if raw else {}
        except (TypeError, ValueError):
            return {}

    @property
    def spec(self) -> str | None:
        """The sweep spec (YAML) the trials were run from, when recorded."""
        spec = lb.first_value(self.trials, "spec")
        return str(spec) if spec else None

    def class_names(self) -> dict[int, str]:
        """Class index -> name as the sweep's ``cases.parquet`` records them, for the
        dataset of ``self`` (the first one when there are several); {} when unknown."""
        names = _class_names(Path(self.results_dir), self.sweep)
        names = names[names["dataset"].astype(str) == self.datasets[0]] if len(names) else names
        return {int(i): str(n) for i, n in zip(names["class_index"], names["class_name"],
                                               strict=True) if pd.notna(n)}

    def class_label(self, index: int) -> str:
        """A class' name from the dataset (``class_names``), else ``class {index}``."""
        return self.class_names().get(int(index), f"class {index}")

    def config_labels(self) -> pd.Series:
        """A readable name per ``board`` row (same index): ``model / loss``, and where rows
        share those (a board grouped by more, e.g. hyperparameters), its ``config_id`` or
        position to tell them apart."""
        board = self.board
        names = board["model"].astype(str) + " / " + board["loss"].astype(str)
        if names.duplicated(keep=False).any():
            extra = board["config_id"].astype(str) if "config_id" in board \
                else pd.Series([f"#{i + 1}" for i in range(len(board))], index=board.index)
            names = names.where(~names.duplicated(keep=False), names + " [" + extra + "]")
        return names

    def trial_rows(self) -> pd.Series:
        """The ``board`` row (index label) each trial id was pooled into, from the board's
        ``trial_ids`` (JSON lists); indexed by trial id."""
        if "trial_ids" not in self.board:
            return pd.Series(dtype=object)
        pairs = [(tid, idx) for idx, ids in self.board["trial_ids"].items()
                 if isinstance(ids, str) for tid in json.loads(ids)]
        return pd.Series([i for _, i in pairs], index=[str(t) for t, _ in pairs],
                         dtype=object)

    def metric_label(self) -> str:
        arrow = "higher" if self.mode == "max" else "lower"
        return f"{self.metric} ({arrow} is better)"
