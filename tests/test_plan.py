"""The Tune plan's search is seeded by the spec (issue 11 item 6): same spec, same draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.experiment import Experiment

from bench.spec.model import SweepSpec, parse_spec
from bench.spec.plan import make_plan

SPEC = """\
name: t
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 8, val: 4}
models: [testnet]
losses: [dice]
seeds: [0, 1]
samples: 3
params: {lr: {loguniform: [1.0e-4, 1.0e-2]}, batch_size: {choice: [4, 8]}}
"""


def _noop(config: dict[str, Any]) -> None:
    """A trainable that is never run: the search algorithm only draws its configs."""


def drawn_configs(spec: SweepSpec, storage: Path) -> list[dict[str, Any]]:
    """The configs the plan's search algorithm gives its trials, drawn as Tune draws them."""
    plan = make_plan(spec)
    config = plan.tune_config
    search = config.search_alg
    search.set_search_properties(config.metric, config.mode, plan.param_space)
    if spec.search == "optuna":
        return [search.suggest(f"trial{i}") for i in range(plan.trials)]
    search.add_configurations([Experiment(
        name="draws", run=_noop, config=plan.param_space, num_samples=config.num_samples,
        storage_path=str(storage),
    )])
    configs = []
    while (trial := search.next_trial()) is not None:
        configs.append(trial.config)
    return configs


def test_random_search_draws_the_same_params_for_the_same_spec(tmp_path):
    spec = parse_spec(SPEC, "s.yaml")
    assert spec.search_seed == 0
    first, second = drawn_configs(spec, tmp_path), drawn_configs(spec, tmp_path)
    assert len(first) == 2 * 3  # seeds x samples
    assert first == second
    assert len({c["lr"] for c in first}) == 6 and all(1e-4 <= c["lr"] <= 1e-2 for c in first)
    other = drawn_configs(parse_spec(SPEC + "search_seed: 7\n", "s.yaml"), tmp_path)
    assert [c["lr"] for c in other] != [c["lr"] for c in first]


def test_optuna_search_draws_the_same_params_for_the_same_spec(tmp_path):
    spec = parse_spec(SPEC + "search: optuna\n", "s.yaml")
    first, second = drawn_configs(spec, tmp_path), drawn_configs(spec, tmp_path)
    assert len(first) == 6
    assert first == second
    other = drawn_configs(parse_spec(SPEC + "search: optuna\nsearch_seed: 7\n", "s.yaml"),
                          tmp_path)
    assert [c["lr"] for c in other] != [c["lr"] for c in first]


def test_max_concurrent_limits_a_random_search_and_reuse_workers_reaches_tune():
    """Tune ignores ``max_concurrent_trials`` beside a search generator (a log line only):
    ``max_concurrent: 1`` ran two trials at once before. The generator limits itself now."""
    spec = parse_spec(SPEC + "max_concurrent: 1\n")
    config = make_plan(spec).tune_config
    assert config.search_alg.max_concurrent == 1
    assert config.max_concurrent_trials is None
    assert config.reuse_actors is True  # warm workers by default
    assert make_plan(parse_spec(SPEC + "reuse_workers: false\n")).tune_config.reuse_actors \
        is False
    optuna = make_plan(parse_spec(SPEC + "max_concurrent: 2\nsearch: optuna\n")).tune_config
    assert optuna.max_concurrent_trials == 2  # Tune wraps a Searcher in a ConcurrencyLimiter
