"""The sweep spec: validation messages and the Tune plan a spec expands into."""

from __future__ import annotations

import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.variant_generator import generate_variants

from bench.errors import UsageError
from bench.plan import make_plan
from bench.spec import DEFAULT_SPEC, Space, parse_spec

BASE = """\
name: t
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 8, val: 4}
models: [testnet, {unet_shallow: {base_filters: 4}}]
losses: [dice, {focal: {gamma: 2}}]
seeds: [0, 1]
epochs: 3
"""


def test_default_spec_is_valid_and_names_the_contract_example():
    spec = parse_spec(DEFAULT_SPEC, "default")
    assert spec.name == "smoke"
    assert [m.label for m in spec.models] == ["testnet", "unet_shallow"]
    assert [loss.label for loss in spec.losses] == ["categorical_crossentropy", "dice"]
    assert spec.params["lr"] == Space("loguniform", (1e-4, 1e-2))
    assert spec.params["batch_size"] == 16
    assert (spec.metric, spec.mode, spec.epochs, spec.cells) == ("val_mean_iou", "max", 2, 4)


def test_defaults_labels_and_options():
    spec = parse_spec(BASE, "s.yaml")
    assert [m.label for m in spec.models] == ["testnet", "unet_shallow(base_filters=4)"]
    assert [loss.label for loss in spec.losses] == ["dice", "focal(gamma=2)"]
    assert spec.params == {"batch_size": 16, "lr": 1e-3, "optimizer": "adam",
                           "weight_decay": 0.0, "augment": False}
    assert spec.seeds == (0, 1) and spec.cells == 8
    assert (spec.search, spec.scheduler.name, spec.mixed_precision, spec.xla) == (
        "random", "fifo", "none", False)
    assert parse_spec(BASE, "s.yaml", name="other").name == "other"


def test_grid_times_samples_gives_every_cell_its_draws():
    spec = parse_spec(BASE + "samples: 3\nparams: {lr: {loguniform: [1.0e-4, 1.0e-2]},"
                      " batch_size: {choice: [4, 8]}}\n", "s.yaml")
    plan = make_plan(spec)
    assert plan.trials == 8 * 3
    assert plan.tune_config.num_samples == 3
    assert isinstance(plan.tune_config.scheduler, FIFOScheduler)
    # One expansion of Tune's grid gives each model x loss x seed once, lr drawn in range.
    variants = [config for _, config in generate_variants(plan.param_space)]
    cells = {(c["model"], c["loss"], c["seed"]) for c in variants}
    assert len(variants) == len(cells) == 8
    assert all(1e-4 <= c["lr"] <= 1e-2 and c["batch_size"] in (4, 8) for c in variants)


def test_optuna_and_asha():
    spec = parse_spec(BASE + "search: optuna\nsamples: 2\nscheduler: {asha: {grace_period: 2}}\n"
                      "params: {lr: {uniform: [0.001, 0.01]}}\n", "s.yaml")
    plan = make_plan(spec)
    assert plan.tune_config.num_samples == 16
    assert isinstance(plan.param_space["model"], tune.search.sample.Categorical)
    assert plan.tune_config.search_alg is not None
    scheduler = plan.tune_config.scheduler
    assert isinstance(scheduler, ASHAScheduler)
    assert (plan.tune_config.metric, plan.tune_config.mode) == ("val_mean_iou", "max")
    assert spec.scheduler.grace_period == 2 and spec.scheduler.reduction_factor == 2.0


BAD = [
    ("modles: [testnet]\n", "s.yaml: modles: unknown key; allowed: name, dataset"),
    ("models: [unet3]\n", "s.yaml: models[0]: unknown name 'unet3'; allowed: "),
    ("losses: [dice, dice]\n", "s.yaml: losses: listed twice: dice"),
    ("losses: [{focal: {gama: 2}}]\n", "s.yaml: losses[0]: "),
    ("models: [{testnet: {depth: 2}}]\n", "s.yaml: models[0]: model 'testnet' has no option "
                                           "depth; allowed options: base_filters, batch_norm"),
    ("models: [lstm_unet]\n", "s.yaml: models[0]: model 'lstm_unet' (sequence) needs a dataset "
                              "of kind sequence; dataset 'shapes' is image"),
    ("dataset: {name: shapes, height: 12, width: 16}\n",
     "s.yaml: models[0]: model 'testnet' cannot take height 12: height and width must be "
     "multiples of 8"),
    ("dataset: {name: shapes, colour: 3}\n", "s.yaml: dataset.colour: unknown key; allowed: "),
    ("dataset: {name: cifar}\n", "s.yaml: dataset.name: unknown dataset 'cifar'; allowed: "),
    ("dataset: {name: folder, path: /no/such/folder, classes: 2}\n", "s.yaml: dataset: "),
    ("epochs: 0\n", "s.yaml: epochs: must be at least 1, got 0"),
    ("epochs: two\n", "s.yaml: epochs: must be an integer, got 'two'"),
    ("params: {lr: -1}\n", "s.yaml: params.lr: must be greater than 0.0, got -1"),
    ("params: {lr: {loguniform: [0, 1]}}\n", "s.yaml: params.lr.loguniform[0]: must be greater"),
    ("params: {lr: {normal: [0, 1]}}\n", "s.yaml: params.lr: unknown search space {'normal': "
                                          "[0, 1]}; allowed: {KIND: [...]} with KIND one of "
                                          "choice, uniform, loguniform, randint"),
    ("params: {optimizer: lion}\n", "s.yaml: params.optimizer: 'lion' is not allowed; allowed: "
                                     "adam, adamw, sgd, rmsprop"),
    ("params: {batch_size: {uniform: [2, 8]}}\n", "s.yaml: params.batch_size: uniform gives "),
    ("params: {momentum: 0.9}\n", "s.yaml: params.momentum: unknown key; allowed: batch_size"),
    ("metric: val_accuracy\n", "s.yaml: metric: 'val_accuracy' is not allowed; allowed: "
                               "train_loss, val_loss"),
    ("scheduler: hyperband\n", "s.yaml: scheduler: 'hyperband' is not allowed; allowed: fifo, "
                               "asha"),
    ("mixed_precision: int8\n", "s.yaml: mixed_precision: 'int8' is not allowed"),
    ("resources: {cpu: 1, tpu: 1}\n", "s.yaml: resources.tpu: unknown key; allowed: cpu, gpu"),
    ("name: 'a b'\n", "s.yaml: name: 'a b' is not allowed"),
    ("models: [testnet\n", "s.yaml: line "),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m.split(":")[1] for _, m in BAD])
def test_bad_specs_name_key_and_allowed_values(change: str, message: str):
    # PyYAML keeps the last of duplicate keys: an appended key overrides the base's value.
    with pytest.raises(UsageError) as info:
        parse_spec(BASE + change, "s.yaml")
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text
