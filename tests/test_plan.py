"""The Tune plan's search is seeded by the spec (issue 11 item 6): same spec, same draws; the
seeds of a configuration share its hyperparameters (issue 25 item 1); ASHA is refused where
it would rank survivors (issue 25 item 7)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from ray.tune.experiment import Experiment

from bench.common.errors import UsageError
from bench.spec.configs import config_id
from bench.spec.model import SweepSpec, parse_spec
from bench.spec.plan import check_plan, make_plan

SPEC = """\
name: t
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 8, val: 4}
models: [testnet]
losses: [dice]
seeds: [0, 1]
samples: 3
params: {lr: {loguniform: [1.0e-4, 1.0e-2]}, batch_size: {choice: [4, 8]}}
"""

# The acceptance sweep: testnet x dice, three seeds, a random lr, one sample.
ACCEPTANCE = """\
name: acc
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 8, val: 4}
models: [testnet]
losses: [dice]
seeds: [0, 1, 2]
samples: 1
epochs: 1
params: {lr: {loguniform: [1.0e-4, 1.0e-2]}, batch_size: 4}
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


def _by_configuration(configs: list[dict[str, Any]], key: str) -> dict[Any, dict[int, Any]]:
    """``{configuration: {seed: hyperparameters}}``, configurations keyed by ``key``."""
    out: dict[Any, dict[int, Any]] = {}
    for c in configs:
        out.setdefault(c[key], {})[c["seed"]] = (c["lr"], c["batch_size"])
    return out


def test_random_search_draws_the_same_params_for_the_same_spec(tmp_path):
    spec = parse_spec(SPEC, "s.yaml")
    assert spec.search_seed == 0
    first, second = drawn_configs(spec, tmp_path), drawn_configs(spec, tmp_path)
    assert len(first) == 2 * 3  # seeds x samples
    assert first == second
    # Issue 25.1: 3 configurations (samples), each on both seeds with one value of each param.
    per_sample = _by_configuration(first, "sample")
    assert sorted(per_sample) == [0, 1, 2]
    assert all(sorted(seeds) == [0, 1] and len(set(seeds.values())) == 1
               for seeds in per_sample.values())
    assert len({c["lr"] for c in first}) == 3 and all(1e-4 <= c["lr"] <= 1e-2 for c in first)
    assert {c["batch_size"] for c in first} <= {4, 8}
    other = drawn_configs(parse_spec(SPEC + "search_seed: 7\n", "s.yaml"), tmp_path)
    assert [c["lr"] for c in other] != [c["lr"] for c in first]


def test_a_draw_is_tunes_domain_sampled_by_a_generator_keyed_by_cell_sample_and_name(tmp_path):
    # The value is recomputed here from its documented key: SHA-256 of
    # [search_seed, "model | loss", sample, name] seeds NumPy's default_rng, and
    # Tune's own loguniform samples from it (log-uniform: exp of a uniform in log space).
    import hashlib
    import json

    import numpy as np

    configs = drawn_configs(parse_spec(SPEC, "s.yaml"), tmp_path)
    for c in configs:
        key = json.dumps([0, "testnet | dice", c["sample"], "lr"]).encode()
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))
        assert c["lr"] == pytest.approx(math.exp(rng.uniform(math.log(1e-4), math.log(1e-2))),
                                        rel=1e-12)
    # Two cells draw apart: another model's lr for the same sample differs.
    two = parse_spec(SPEC.replace("models: [testnet]", "models: [testnet, unet_shallow]"))
    both = drawn_configs(two, tmp_path)
    assert len(both) == 2 * 3 * 2
    assert len({c["lr"] for c in both}) == 6  # 2 cells x 3 samples, shared by the 2 seeds
    # The testnet cell draws what it drew alone: adding a model changes no other cell.
    assert {c["lr"] for c in both if c["model"] == "testnet"} == {c["lr"] for c in configs}
    # Two datasets: sample k of testnet x dice is one configuration on both (--across).
    two_data = SPEC.replace("dataset: {name: shapes, height: 16, width: 16, channels: 3, "
                            "classes: 3, train: 8, val: 4}",
                            "datasets: [{name: shapes, height: 16, width: 16, channels: 3, "
                            "classes: 3, train: 8, val: 4}, {name: digits, height: 16, "
                            "width: 16, train: 8, val: 4}]")
    assert two_data != SPEC
    per_dataset = drawn_configs(parse_spec(two_data), tmp_path)
    assert len(per_dataset) == 2 * 3 * 2
    for dataset in ("shapes", "digits"):
        assert sorted((c["sample"], c["seed"], c["lr"]) for c in per_dataset
                      if c["dataset"] == dataset) == sorted(
            (c["sample"], c["seed"], c["lr"]) for c in configs)


def test_acceptance_three_seeds_one_sample_is_one_learning_rate(tmp_path):
    spec = parse_spec(ACCEPTANCE, "s.yaml")
    configs = drawn_configs(spec, tmp_path)
    assert sorted(c["seed"] for c in configs) == [0, 1, 2]
    assert len({c["lr"] for c in configs}) == 1
    two = drawn_configs(parse_spec(ACCEPTANCE.replace("samples: 1", "samples: 2")), tmp_path)
    assert len(two) == 6 and len({c["lr"] for c in two}) == 2
    assert sorted(_by_configuration(two, "lr")[two[0]["lr"]]) == [0, 1, 2]


def test_optuna_search_repeats_each_suggestion_on_every_seed(tmp_path):
    spec = parse_spec(SPEC + "search: optuna\n", "s.yaml")
    first, second = drawn_configs(spec, tmp_path), drawn_configs(spec, tmp_path)
    assert len(first) == 6
    assert first == second
    # Tune's Repeater: suggestions i and i+1 are one configuration on seeds 0 and 1.
    assert [c["seed"] for c in first] == [0, 1] * 3
    assert [c["__trial_index__"] for c in first] == [0, 1] * 3
    for a, b in zip(first[::2], first[1::2], strict=True):
        assert (a["lr"], a["batch_size"]) == (b["lr"], b["batch_size"])
    assert len({c["lr"] for c in first}) == 3
    other = drawn_configs(parse_spec(SPEC + "search: optuna\nsearch_seed: 7\n", "s.yaml"),
                          tmp_path)
    assert [c["lr"] for c in other] != [c["lr"] for c in first]


def test_optuna_is_told_the_mean_over_a_configurations_seeds(tmp_path):
    spec = parse_spec(SPEC + "search: optuna\n", "s.yaml")
    search = make_plan(spec).tune_config.search_alg
    search.set_search_properties("val_mean_iou", "max", make_plan(spec).param_space)
    search.suggest("a")
    search.suggest("b")
    search.on_trial_complete("a", {"val_mean_iou": 0.2})
    search.on_trial_complete("b", {"val_mean_iou": 0.6})
    (trial,) = search.searcher._ot_study.trials
    assert trial.value == pytest.approx(0.4)


def test_asha_on_several_seeds_outside_a_protocol_is_refused():
    # Issue 25.7: ASHA would rank a configuration on the seeds it let finish.
    with pytest.raises(UsageError, match=r"^t: scheduler: asha with 2 seeds outside a protocol"):
        make_plan(parse_spec(SPEC + "scheduler: asha\n"))
    one_seed = parse_spec(SPEC.replace("seeds: [0, 1]", "seeds: [0]") + "scheduler: asha\n")
    assert make_plan(one_seed).tune_config.scheduler.__class__.__name__ == "AsyncHyperBandScheduler"
    check_plan(parse_spec(SPEC.replace("seeds: [0, 1]\n", "").replace("samples: 3\n", "")
                          + "protocol: {tune: {samples: 2, scheduler: asha, seeds: [0, 1]}, "
                            "final: {seeds: [0, 1]}}\n"))  # allowed: only the search stops


def test_config_id_is_the_cell_and_the_hyperparameter_values():
    params = {"lr": 0.001, "batch_size": 8, "optimizer": "adam", "augment": False}
    one = config_id("shapes", "testnet", "dice", params)
    assert len(one) == 12 and int(one, 16) >= 0
    # Types a Parquet round trip gives (NumPy scalars, 8.0 for 8) are the same configuration.
    import numpy as np

    assert config_id("shapes", "testnet", "dice", {**params, "lr": np.float64(0.001),
                                                   "batch_size": 8.0}) == one
    assert config_id("shapes", "testnet", "dice", dict(reversed(params.items()))) == one
    for other in (config_id("digits", "testnet", "dice", params),
                  config_id("shapes", "unet", "dice", params),
                  config_id("shapes", "testnet", "focal", params),
                  config_id("shapes", "testnet", "dice", {**params, "lr": 0.0011}),
                  config_id("shapes", "testnet", "dice", {**params, "augment": True})):
        assert other != one


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


def test_asha_refusal_exits_2_with_one_line_before_anything_is_written(tmp_path, capsys):
    from tests.conftest import run_cli

    spec = tmp_path / "asha.yaml"
    spec.write_text(SPEC + "scheduler: asha\n")
    assert run_cli("sweep", str(spec), "--results", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "zoobench: error: t: scheduler: asha with 2 seeds outside a protocol"), err
    assert not (tmp_path / "r").exists()
