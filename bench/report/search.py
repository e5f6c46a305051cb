"""The sweep as a hyperparameter search: which parameters it varied, an Optuna study of its
trials, and how much each parameter mattered (fANOVA, with bootstrap intervals).

Pure functions over the trials table; the report's ``search`` section draws them.

>>> params = hyperparameters(trials)              # one column per parameter, per trial
>>> space = search_space(params)                  # {name: optuna distribution}, varied only
>>> study = build_study(params, trials["val_mean_iou"], space, mode="max")
>>> table = importances(study)                    # param, importance, low, high
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

#: Hyperparameter columns of ``trials.parquet`` read when a trial has no ``params`` JSON.
KNOWN = ("lr", "batch_size", "optimizer", "weight_decay", "augment")
#: Keys of a trial's config that are not searched parameters (or are the grid's own).
NOT_PARAMS = frozenset({"seed", "stage", "dataset", "cell", "sweep", "trial_id", "epochs"})
#: The grid's keys, counted as categorical parameters when they have 2..MAX_LEVELS values.
GRID = ("model", "loss")
MAX_LEVELS = 20
#: fANOVA's forest: fewer, shallower trees than optuna's default (64 x 64), the same
#: ranking on the sweeps tried (see docs/report.md) at a quarter of the time.
N_TREES, MAX_DEPTH = 16, 8
#: Trials fANOVA sees at most (a seeded random subset of more), and bootstrap resamples.
MAX_TRIALS, N_BOOT = 200, 8


def hyperparameters(trials: pd.DataFrame) -> pd.DataFrame:
    """Each trial's hyperparameters, one column each (index: ``trials``' index).

    A column of the trials table wins (it is the record); keys only in a trial's ``params``
    (its config, JSON) come from there. The grid's ``model`` and ``loss`` are included.
    """
    from_json: pd.DataFrame = pd.DataFrame(index=trials.index)
    if "params" in trials:
        parsed = [_json(v) for v in trials["params"]]
        from_json = pd.DataFrame(parsed, index=trials.index)
    keys = [k for k in dict.fromkeys([*GRID, *KNOWN, *from_json.columns])
            if k not in NOT_PARAMS]
    out = {}
    for key in keys:
        column = trials[key] if key in trials else from_json.get(key)
        if column is not None and column.map(_scalar).all():
            out[key] = column
    return pd.DataFrame(out, index=trials.index)


def _json(value: Any) -> dict:
    try:
        parsed = json.loads(value) if isinstance(value, str) else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int, float, np.generic)) \
        or value is pd.NA


def search_space(params: pd.DataFrame) -> dict[str, BaseDistribution]:
    """The parameters ``params`` varies (2+ distinct values), as Optuna distributions.

    Strings and booleans are categorical; integers ``IntDistribution`` and floats
    ``FloatDistribution`` over their range, on a log scale when positive and spanning a
    factor of 8 or more. ``model`` and ``loss`` count only with 2..``MAX_LEVELS`` values.
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    space: dict[str, BaseDistribution] = {}
    for name in params:
        values = params[name].dropna()
        distinct = pd.unique(values)
        if len(distinct) < 2 or (name in GRID and len(distinct) > MAX_LEVELS):
            continue
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            space[name] = CategoricalDistribution(sorted(_py(v) for v in distinct))
            continue
        low, high = float(values.min()), float(values.max())
        log = low > 0 and high / low >= 8
        if pd.api.types.is_integer_dtype(values) or all(float(v).is_integer() for v in distinct):
            space[name] = IntDistribution(int(low), int(high), log=log)
        else:
            space[name] = FloatDistribution(low, high, log=log)
    return space


def _py(value: Any) -> Any:
    """A numpy or pandas scalar as the plain Python value Optuna stores."""
    return value.item() if isinstance(value, np.generic) else value


def _cast(value: Any, dist: BaseDistribution) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return _py(value)
    return int(value) if isinstance(dist, IntDistribution) else float(value)


def build_study(params: pd.DataFrame, values: pd.Series, space: dict[str, BaseDistribution],
                mode: str) -> optuna.Study:
    """An in-memory Optuna study of the trials: one COMPLETE trial per row of ``params``
    (restricted to ``space``'s columns) whose ``values`` is finite and which has every
    parameter. ``mode``: ``max`` or ``min`` (the study's direction)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = list(space)
    ok = np.isfinite(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)) \
        & params[names].notna().all(axis=1).to_numpy()
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    study.add_trials([
        optuna.trial.create_trial(
            params={n: _cast(row[n], space[n]) for n in names},
            distributions=space, value=float(value))
        for (_, row), value in zip(params.loc[ok, names].iterrows(), values[ok], strict=True)])
    return study


def fanova(study: optuna.Study, seed: int = 0) -> dict[str, float]:
    """``optuna.importance.get_param_importances`` of ``study`` with fANOVA
    (:data:`N_TREES` trees of depth :data:`MAX_DEPTH`, ``seed``): {param: share of the
    metric's variance it explains}, summing to 1, largest first."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    evaluator = FanovaImportanceEvaluator(n_trees=N_TREES, max_depth=MAX_DEPTH, seed=seed)
    return {k: float(v) for k, v in get_param_importances(study, evaluator=evaluator).items()}


def importances(study: optuna.Study, *, n_boot: int = N_BOOT, max_trials: int = MAX_TRIALS,
                seed: int = 0, level: float = 0.8) -> pd.DataFrame:
    """Each parameter's fANOVA importance and its spread over bootstrap resamples.

    ``importance`` is :func:`fanova` of the study's trials (a seeded random ``max_trials``
    of them when there are more); ``low``/``high`` the central ``level`` interval of the
    importance over ``n_boot`` resamples of those trials with replacement (each its own
    forest seed): how much the number would move with other draws of the same search.

    Returns:
        Columns ``param, importance, low, high``, largest importance first.

    Raises:
        RuntimeError: the trials' metric does not vary (fANOVA's forest explains nothing).
    """
    import optuna

    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    rng = np.random.default_rng(seed)
    if len(trials) > max_trials:
        trials = [trials[i] for i in sorted(rng.choice(len(trials), max_trials, replace=False))]

    def study_of(chosen: list) -> optuna.Study:
        s = optuna.create_study(directions=study.directions)
        s.add_trials(chosen)
        return s

    base = fanova(study_of(trials) if len(trials) < len(study.trials) else study, seed)
    boots = []
    for b in range(n_boot):
        picks = rng.integers(0, len(trials), len(trials))
        try:
            boots.append(fanova(study_of([trials[i] for i in picks]), seed + 1 + b))
        except RuntimeError:  # a resample whose metric does not vary: it says nothing
            continue
    tail = (1 - level) / 2
    rows = []
    for name, value in base.items():
        spread = [b.get(name, 0.0) for b in boots]
        low, high = (np.quantile(spread, [tail, 1 - tail]) if spread
                     else (math.nan, math.nan))
        rows.append({"param": name, "importance": value, "low": float(low),
                     "high": float(high)})
    return pd.DataFrame(rows, columns=["param", "importance", "low", "high"])


def best_so_far(values: np.ndarray, mode: str) -> np.ndarray:
    """The best value among the first k trials, for each k (NaN ignored; NaN until the
    first finite value). ``values``: (n,) in trial order."""
    v = np.asarray(values, dtype=float)
    filled = np.where(np.isfinite(v), v, -np.inf if mode == "max" else np.inf)
    best = np.maximum.accumulate(filled) if mode == "max" else np.minimum.accumulate(filled)
    return np.where(np.isfinite(best), best, np.nan)
