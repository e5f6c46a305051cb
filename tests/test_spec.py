"""The sweep spec: validation messages and the Tune plan a spec expands into."""

from __future__ import annotations

import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.variant_generator import generate_variants

import zoo
from bench.common.errors import UsageError
from bench.spec.model import DEFAULT_SPEC, Space, check_resources, parse_spec
from bench.spec.plan import make_plan

BASE = """\
name: t
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 8, val: 4}
models: [testnet, {unet_shallow: {base_filters: 4}}]
losses: [dice, {focal: {gamma: 2}}]
seeds: [0, 1]
epochs: 3
"""


def with_keys(change: str, base: str = BASE) -> str:
    """``base`` with the top-level keys of ``change`` replaced by its lines.

    Duplicate keys are refused (issue 11 item 16), so a change cannot simply be appended.
    """
    keys = {line.split(":")[0] for line in change.splitlines() if line and line[0] != " "}
    kept = [line for line in base.splitlines(keepends=True) if line.split(":")[0] not in keys]
    return "".join(kept) + change


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
    # The samples are a grid axis of their own: each draw is a configuration run on every
    # seed (bench.spec.configs), so one expansion of Tune's grid is the whole sweep.
    assert plan.tune_config.num_samples == 1
    assert isinstance(plan.tune_config.scheduler, FIFOScheduler)
    variants = [config for _, config in generate_variants(plan.param_space)]
    cells = {(c["model"], c["loss"], c["sample"], c["seed"]) for c in variants}
    assert len(variants) == len(cells) == 8 * 3
    assert all(1e-4 <= c["lr"] <= 1e-2 and c["batch_size"] in (4, 8) for c in variants)


def test_optuna_and_asha():
    # One seed: ASHA with several seeds outside a protocol is refused (test_plan).
    spec = parse_spec(BASE.replace("seeds: [0, 1]", "seeds: [0]") + "search: optuna\nsamples: 2\n"
                      "scheduler: {asha: {grace_period: 2}}\n"
                      "params: {lr: {uniform: [0.001, 0.01]}}\n", "s.yaml")
    plan = make_plan(spec)
    assert plan.tune_config.num_samples == 8
    assert isinstance(plan.param_space["model"], tune.search.sample.Categorical)
    assert plan.tune_config.search_alg is not None
    scheduler = plan.tune_config.scheduler
    assert isinstance(scheduler, ASHAScheduler)
    assert (plan.tune_config.metric, plan.tune_config.mode) == ("val_mean_iou", "max")
    assert spec.scheduler.grace_period == 2 and spec.scheduler.reduction_factor == 2.0


# The registries' names as the messages list them, read when the test runs (a plugin that
# another test registers in this process, before or after collection, is listed too).
MODELS, DATASETS = "<registered models>", "<registered datasets>"


def registered(message: str) -> str:
    """``message`` with the registries' names as they are now."""
    return (message.replace(MODELS, ", ".join(zoo.list_models()))
            .replace(DATASETS, ", ".join(zoo.datasets.list_datasets())))
BAD = [
    ("modles: [testnet]\n", "s.yaml: modles: unknown key; allowed: name, dataset, datasets, "
                            "skip_incompatible, models, losses, seeds, epochs, params, samples, "
                            "search, search_seed, scheduler, metric, mode, patience, "
                            "time_budget_s, max_concurrent, max_failures, mixed_precision, xla, "
                            "reuse_workers, resources, protocol, nsd_tolerance, plugins, "
                            "register_best, log_models"),
    ("models: [unet3]\n", "s.yaml: models[0]: unknown name 'unet3'; allowed: " + MODELS),
    ("losses: [dice, dice]\n", "s.yaml: losses: listed twice: dice"),
    ("losses: [{focal: {gama: 2}}]\n", "s.yaml: losses[0]: loss 'focal' has no parameter "
                                       "'gama'; its parameters: gamma, alpha"),
    ("models: [{testnet: {depth: 2}}]\n", "s.yaml: models[0]: model 'testnet' has no option "
                                           "depth; allowed options: base_filters, batch_norm"),
    ("models: [lstm_unet]\n", "s.yaml: models[0]: model 'lstm_unet' (sequence) needs a dataset "
                              "of kind sequence; dataset 'shapes' is image (skip_incompatible: "
                              "true leaves such cells out)"),
    ("dataset: {name: shapes, height: 12, width: 16}\nmodels: [testnet]\n",
     "s.yaml: models[0]: model 'testnet' cannot take input_height=12: height and width must be "
     "multiples of 8 and at least 8 (skip_incompatible: true leaves such cells out)"),
    ("dataset: {name: shapes, colour: 3}\n", "s.yaml: dataset.colour: unknown key; allowed: "
                                             "name, height, width, channels, classes, train, "
                                             "val, test, split_seed, objects, noise, "
                                             "min_radius, max_radius, labelled_fraction, "
                                             "labelled_per_batch"),
    ("dataset: {name: cifar}\n", "s.yaml: dataset.name: unknown dataset 'cifar'; allowed: "
                                 + DATASETS),
    ("dataset: {name: folder, path: /no/such/folder, classes: 2}\n", "s.yaml: dataset: path "
                                                                     "/no/such/folder does not "
                                                                     "exist"),
    ("epochs: 0\n", "s.yaml: epochs: must be at least 1, got 0"),
    ("epochs: two\n", "s.yaml: epochs: must be an integer, got 'two'"),
    ("params: {lr: -1}\n", "s.yaml: params.lr: must be greater than 0.0, got -1"),
    ("params: {lr: {loguniform: [0, 1]}}\n", "s.yaml: params.lr.loguniform[0]: must be greater "
                                             "than 0.0, got 0"),
    ("params: {lr: {normal: [0, 1]}}\n", "s.yaml: params.lr: unknown search space {'normal': "
                                          "[0, 1]}; allowed: {KIND: [...]} with KIND one of "
                                          "choice, uniform, loguniform, randint"),
    ("params: {optimizer: lion}\n", "s.yaml: params.optimizer: 'lion' is not allowed; allowed: "
                                     "adam, adamw, sgd, rmsprop"),
    ("params: {batch_size: {uniform: [2, 8]}}\n", "s.yaml: params.batch_size: uniform gives "
                                                  "fractional values; use randint or choice"),
    ("params: {momentum: 0.9}\n", "s.yaml: params.momentum: unknown key; allowed: batch_size, "
                                  "lr, optimizer, weight_decay, augment"),
    ("metric: val_accuracy\n", "s.yaml: metric: 'val_accuracy' is not allowed; allowed: "
                               "train_loss, val_loss, mean_iou, dice_coef, pixel_accuracy, "
                               "iou_class_0, iou_class_1, iou_class_2, val_mean_iou, "
                               "val_dice_coef, val_pixel_accuracy, val_iou_class_0, "
                               "val_iou_class_1, val_iou_class_2"),
    ("scheduler: hyperband\n", "s.yaml: scheduler: 'hyperband' is not allowed; allowed: fifo, "
                               "asha"),
    ("log_models: best\n", "s.yaml: log_models: 'best' is not allowed; allowed: all, none"),
    ("register_best: seg\nlog_models: none\n", "s.yaml: register_best: registers the best "
     "trial's logged model, but log_models is none (no trial logs one); set log_models: all, "
     "or remove register_best"),
    ("mixed_precision: int8\n", "s.yaml: mixed_precision: 'int8' is not allowed; allowed: none, "
                                "bfloat16, float16"),
    ("resources: {cpu: 1, tpu: 1}\n", "s.yaml: resources.tpu: unknown key; allowed: cpu, gpu, "
                                      "gpu_memory_mb"),
    ("resources: {cpu: 1, gpu_memory_mb: 4000}\n", "s.yaml: resources.gpu_memory_mb: caps a "
                                                   "trial's GPU memory, but resources.gpu is 0 "
                                                   "(no GPU); give resources.gpu a share, e.g. "
                                                   "gpu: 0.25"),
    ("resources: {gpu: 0.5, gpu_memory_mb: 0}\n",
     "s.yaml: resources.gpu_memory_mb: must be at least 1, got 0"),
    ("name: 'a b'\n", "s.yaml: name: 'a b' is not allowed; use letters, digits, '.', '_', '-'"),
    ("models: [testnet\n", "s.yaml: line 7: not valid YAML (expected ',' or ']', but got "
                           "'<stream end>')"),
    # Issue 11 item 3: option values, and the size check following the options.
    ("models: [{testnet: {base_filters: -4}}]\n",
     "s.yaml: models[0]: model 'testnet' option base_filters must be an int >= 1, got -4"),
    ("models: [{ladder: {momentum: fast}}]\n",
     "s.yaml: models[0]: model 'ladder' option momentum must be a number, got 'fast'"),
    ("dataset: {name: shapes, height: 24, width: 24, classes: 3, train: 8, val: 4}\n"
     "models: [{unet_shallow: {depth: 4}}]\n",
     "s.yaml: models[0]: model 'unet_shallow' cannot take input_height=24: height and width "
     "must be multiples of 16 and at least 16 (skip_incompatible: true leaves such cells out)"),
    # ... and loss parameters that depend on the number of classes (3 in BASE).
    ("losses: [{focal: {alpha: [0.1, 0.2]}}]\n",
     "s.yaml: losses[0]: focal: alpha has 2 entries but y_pred needs 3 (one per class of the "
     "last axis); dataset 'shapes' has 3 classes (skip_incompatible: true leaves such cells "
     "out)"),
    ("losses: [{dice: {weights: [1, 2]}}]\n",
     "s.yaml: losses[0]: dice: weights has 2 entries but y_pred needs 3 (one per class of the "
     "last axis); dataset 'shapes' has 3 classes (skip_incompatible: true leaves such cells "
     "out)"),
    ("dataset: {name: shapes, height: 16, width: 16, classes: 1, train: 8, val: 4}\n"
     "losses: [{focal: {alpha: 2.0}}]\n",
     "s.yaml: losses[0]: focal: for a sigmoid output alpha must be in [0, 1] (the background "
     "gets 1 - alpha), got 2.0; dataset 'shapes' has 1 class (a sigmoid output) "
     "(skip_incompatible: true leaves such cells out)"),
    # Item 4: labelled_per_batch is checked against every batch size params allows.
    ("dataset: {name: shapes, height: 16, width: 16, train: 8, val: 4, labelled_fraction: 0.5, "
     "labelled_per_batch: 4}\nparams: {batch_size: {choice: [4, 8]}}\n",
     "s.yaml: dataset.labelled_per_batch: 4 must be below params.batch_size, which can be 4; "
     "the rest of each batch is unlabelled samples"),
    ("dataset: {name: shapes, height: 16, width: 16, labelled_per_batch: 2}\n",
     "s.yaml: dataset.labelled_per_batch: needs labelled_fraction (which samples are labelled) "
     "as well"),
    # Item 5: identical duplicate trials.
    ("samples: 3\n", "s.yaml: samples: 3 draws of fixed params would be 3 identical trials; "
                     "give params a search space (e.g. lr: {loguniform: [1.0e-4, 1.0e-2]}), or "
                     "for independent repeats list more seeds (seeds: [0, 1, 2]) with samples: "
                     "1"),
    # Item 16: duplicate keys, named with their line.
    ("epochs: 2\nepochs: 3\n", "s.yaml: line 7: duplicate key 'epochs' (first given on line 6)"),
    ("dataset: {name: shapes, height: 16, height: 8}\n",
     "s.yaml: line 6: duplicate key 'height' (first given on line 6)"),
    # New keys.
    ("search_seed: -1\n", "s.yaml: search_seed: must be at least 0, got -1"),
    ("max_failures: 1.5\n", "s.yaml: max_failures: must be an integer, got 1.5"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m.split(":")[1] for _, m in BAD])
def test_bad_specs_name_key_and_allowed_values(change: str, message: str):
    with pytest.raises(UsageError) as info:
        parse_spec(with_keys(change), "s.yaml")
    text = str(info.value)
    assert text == registered(message)  # the whole message, not a prefix
    assert "\n" not in text


def test_model_options_set_the_size_check():
    # unet_shallow's default depth 3 needs multiples of 8; depth 2 takes 12 x 12.
    spec = parse_spec(with_keys(
        "dataset: {name: shapes, height: 12, width: 12, classes: 3, train: 8, val: 4}\n"
        "models: [{unet_shallow: {depth: 2, base_filters: 4}}]\n"), "s.yaml")
    assert [m.label for m in spec.models] == ["unet_shallow(base_filters=4,depth=2)"]


def test_labelled_per_batch_below_every_batch_size_is_accepted_and_loads_as_trials_do():
    import zoo

    spec = parse_spec(with_keys(
        "dataset: {name: shapes, height: 16, width: 16, classes: 3, train: 8, val: 4, "
        "labelled_fraction: 0.5, labelled_per_batch: 2}\n"
        "params: {batch_size: {choice: [4, 8]}}\n"), "s.yaml")
    assert spec.dataset_options["labelled_per_batch"] == 2
    # What a trial then does with its batch size: the loader takes it.
    train, _, _ = zoo.datasets.load(spec.dataset, batch_size=4, **spec.dataset_options)
    x, _, weights = next(iter(train))
    assert x.shape[0] == 4 and float(weights.numpy().sum()) >= 2


def test_new_keys_have_their_defaults():
    spec = parse_spec(BASE, "s.yaml")
    assert (spec.search_seed, spec.max_failures) == (0, 2)
    assert spec.log_models == "all"
    spec = parse_spec(BASE + "search_seed: 5\nmax_failures: 0\nlog_models: none\n", "s.yaml")
    assert (spec.search_seed, spec.max_failures, spec.log_models) == (5, 0, "none")


def test_every_problem_is_reported_at_once_one_line_each():
    change = ("epochs: 0\nmodels: [{testnet: {base_filters: -4}}, unet3]\n"
              "params: {lr: -1, optimizer: lion}\nmode: up\n")
    with pytest.raises(UsageError) as info:
        parse_spec(with_keys(change), "s.yaml")
    assert str(info.value).splitlines() == [
        "s.yaml: 6 problems:",
        "  s.yaml: params.lr: must be greater than 0.0, got -1",
        "  s.yaml: params.optimizer: 'lion' is not allowed; allowed: adam, adamw, sgd, rmsprop",
        "  s.yaml: models[0]: model 'testnet' option base_filters must be an int >= 1, got -4",
        "  s.yaml: models[1]: unknown name 'unet3'; allowed: " + ", ".join(zoo_models()),
        "  s.yaml: mode: 'up' is not allowed; allowed: max, min",
        "  s.yaml: epochs: must be at least 1, got 0",
    ]


def test_more_than_ten_problems_show_the_first_ten():
    change = "seeds: [" + ", ".join(["-1"] * 12) + "]\nepochs: 0\n"
    with pytest.raises(UsageError) as info:
        parse_spec(with_keys(change), "s.yaml")
    lines = str(info.value).splitlines()
    assert lines[0] == "s.yaml: 2 problems:"  # seeds stop at their first bad entry
    many = "params: {" + ", ".join(f"x{i}: 1" for i in range(12)) + "}\n"
    with pytest.raises(UsageError) as info:
        parse_spec(with_keys(many), "s.yaml")
    lines = str(info.value).splitlines()
    assert lines[0] == "s.yaml: 12 problems (the first 10 below):"
    assert len(lines) == 11
    assert lines[1].startswith("  s.yaml: params.x0: unknown key; allowed: batch_size")


def zoo_models() -> list[str]:
    import zoo

    return zoo.list_models()


def test_warnings_for_specs_that_run_but_probably_mean_something_else(capsys):
    spec = parse_spec(with_keys(
        "dataset: {name: shapes, height: 16, width: 16, classes: 3, train: 8, val: 4}\n"
        "models: [ladder]\nparams: {batch_size: {choice: [4, 16]}}\n"), "s.yaml")
    assert spec.warnings == (
        "s.yaml: models[0]: 'ladder' is semi-supervised, but the dataset has no "
        "labelled_fraction: every sample is labelled and it trains supervised only (set "
        "dataset.labelled_fraction, e.g. 0.1)",
        "s.yaml: params.batch_size: 16 is larger than the training split (8 samples): an "
        "epoch is then one batch of 8",
    )
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("zoobench: warning: ")] == [
        f"zoobench: warning: {w}" for w in spec.warnings]
    quiet = parse_spec(with_keys(
        "dataset: {name: shapes, height: 16, width: 16, classes: 3, train: 8, val: 4, "
        "labelled_fraction: 0.5}\nmodels: [ladder]\nparams: {batch_size: 4}\n"), "s.yaml")
    assert quiet.warnings == ()


def test_a_gpu_memory_cap_reaches_the_spec_and_defaults_to_none():
    spec = parse_spec(with_keys("resources: {cpu: 1, gpu: 0.25, gpu_memory_mb: 8000}\n"),
                      "s.yaml")
    assert (spec.gpu, spec.gpu_memory_mb) == (0.25, 8000)
    assert parse_spec(with_keys(""), "s.yaml").gpu_memory_mb is None
    assert parse_spec(with_keys(""), "s.yaml").reuse_workers is True
    assert parse_spec(with_keys("reuse_workers: false\n"), "s.yaml").reuse_workers is False


def test_resources_beyond_the_cluster_are_a_usage_error():
    spec = parse_spec(with_keys("resources: {cpu: 64}\n"), "s.yaml")
    with pytest.raises(UsageError, match=r"^resources.cpu: a trial asks for 64 CPUs, but the "
                                         r"Ray cluster has 2; lower resources.cpu"):
        check_resources(spec, {"CPU": 2.0, "memory": 1e9})
    check_resources(spec, {"CPU": 64.0})
    with pytest.raises(UsageError, match=r"^resources.cpu: a trial asks for 64 CPUs, but its "
                                         r"largest node has 32"):
        check_resources(spec, {"CPU": 64.0}, [{"CPU": 32.0}, {"CPU": 32.0}])
    gpu = parse_spec(with_keys("resources: {cpu: 1, gpu: 0.5}\n"), "s.yaml")
    with pytest.raises(UsageError, match=r"^resources.gpu: a trial asks for 0.5 GPUs, but the "
                                         r"Ray cluster has 0"):
        check_resources(gpu, {"CPU": 2.0})
    check_resources(gpu, {"CPU": 2.0, "GPU": 1.0})


# ---------------------------------------------------------------- several datasets (issue 15)

SHAPES_16 = "{name: shapes, height: 16, width: 16, classes: 3, train: 8, val: 4}"
DIGITS_16 = "{name: digits, height: 16, width: 16, digit_size: 8, train: 8, val: 4}"
NO_DATASET = "".join(line for line in BASE.splitlines(keepends=True)
                     if not line.startswith("dataset:"))


def test_dataset_labels_name_then_the_options_that_tell_entries_apart():
    from bench.spec.model import dataset_labels

    defaults = {"digits": {"height": 32, "width": 32, "noise": 0.0}, "shapes": {"height": 64}}
    labels = dataset_labels(
        [("digits", {"height": 16, "width": 16}), ("shapes", {"height": 16}),
         ("digits", {"width": 16}), ("digits", {"height": 16, "width": 16, "noise": 0.1})],
        defaults.__getitem__)
    # shapes is alone: its name. The digits differ in height (16, the default 32, 16) and
    # noise (default 0.0, 0.0, 0.1), never in width: those two options, sorted by key.
    assert labels == ["digits[height=16,noise=0.0]", "shapes", "digits[height=32,noise=0.0]",
                      "digits[height=16,noise=0.1]"]


def test_datasets_give_each_its_label_and_the_grid_its_cells():
    spec = parse_spec(with_keys(f"datasets: [{SHAPES_16}, {DIGITS_16}]\n", NO_DATASET), "s.yaml")
    assert [(d.name, d.label) for d in spec.datasets] == [("shapes", "shapes"),
                                                          ("digits", "digits")]
    # The first dataset stays reachable the single-dataset way.
    assert (spec.dataset, spec.dataset_options["height"]) == ("shapes", 16)
    assert spec.grid[0] == ("shapes", "testnet", "dice") and len(spec.grid) == 2 * 2 * 2
    assert spec.cells == 8 * 2 and spec.skipped == ()
    same_name = parse_spec(with_keys(
        "datasets: [{name: digits, height: 16, width: 16, digit_size: 8, train: 8, val: 4},"
        " {name: digits, height: 32, width: 32, digit_size: 8, train: 8, val: 4}]\n",
        NO_DATASET), "s.yaml")
    assert [d.label for d in same_name.datasets] == ["digits[height=16,width=16]",
                                                     "digits[height=32,width=32]"]
    # A one-dataset spec is as before: the label is the name.
    assert [d.label for d in parse_spec(BASE, "s.yaml").datasets] == ["shapes"]


def test_plan_grids_the_datasets_and_optuna_counts_their_cells():
    spec = parse_spec(with_keys(f"datasets: [{SHAPES_16}, {DIGITS_16}]\n", NO_DATASET), "s.yaml")
    space = make_plan(spec).param_space
    assert space["dataset"] == tune.grid_search(["shapes", "digits"])
    configs = [v["config"] for _, v in generate_variants({"config": space})]
    assert len(configs) == make_plan(spec).trials == 16
    assert sorted({(c["dataset"], c["model"], c["loss"], c["seed"]) for c in configs}) == sorted(
        (d, m, lo, s) for d, m, lo in spec.grid for s in spec.seeds)
    optuna = parse_spec(with_keys(f"datasets: [{SHAPES_16}, {DIGITS_16}]\nsearch: optuna\n",
                                  NO_DATASET), "s.yaml")
    plan = make_plan(optuna)
    assert plan.param_space["dataset"].categories == ["shapes", "digits"]
    assert plan.tune_config.num_samples == 16
    # One dataset: no dataset key, the configs are as before.
    assert "dataset" not in make_plan(parse_spec(BASE, "s.yaml")).param_space


@pytest.mark.parametrize(("change", "message"), [
    # BASE already gives dataset: one more key, datasets, is both.
    (f"dataset: {SHAPES_16}\ndatasets: [{SHAPES_16}]\n",
     "s.yaml: datasets: give either dataset (one) or datasets (a list of several), not both"),
    ("datasets: []\n", "s.yaml: datasets: must be a non-empty list of datasets, like [{name: "
                      "shapes, height: 32}, {name: digits, height: 32}]; got []"),
    ("datasets: shapes\n", "s.yaml: datasets: must be a non-empty list of datasets, like "
                          "[{name: shapes, height: 32}, {name: digits, height: 32}]; got "
                          "'shapes'"),
    # The same data twice: options in another order, a default spelled out.
    ("datasets: [{name: shapes, height: 16, width: 16}, {name: shapes, width: 16, height: 16,"
     " channels: 3}]\n", "s.yaml: datasets[1]: 'shapes' with these options is datasets[0] "
                         "again (the same data); list it once"),
    (f"datasets: [{SHAPES_16}, {{name: shapes, height: 16, colour: red}}]\n",
     "s.yaml: datasets[1].colour: unknown key; allowed: name, height, width, channels, "
     "classes, train, val, test, split_seed, objects, noise, min_radius, max_radius, "
     "labelled_fraction, labelled_per_batch"),
    ("skip_incompatible: yes please\n", "s.yaml: skip_incompatible: must be true or false, "
                                      "got 'yes please'"),
    ("models: [testnet]\n", "s.yaml: dataset: missing (required): give dataset, or datasets "
                            "for several"),
])
def test_bad_datasets_are_one_line_errors(change, message):
    if change.startswith("skip_incompatible"):
        change += f"dataset: {SHAPES_16}\n"
    with pytest.raises(UsageError) as info:
        parse_spec(with_keys(change, NO_DATASET), "s.yaml")
    text = str(info.value)
    assert text == registered(message)  # the whole message, not a prefix
    assert "\n" not in text


def test_metric_must_be_reported_for_every_dataset_named_when_not():
    # shapes here has 3 classes, digits 11: a class-5 IoU exists on digits only.
    text = with_keys(f"datasets: [{DIGITS_16}, {SHAPES_16}]\nmetric: val_iou_class_5\n",
                     NO_DATASET)
    with pytest.raises(UsageError, match=r"^s.yaml: metric: 'val_iou_class_5' is not allowed; "
                                         r"allowed: .* \(dataset 'shapes'\)$"):
        parse_spec(text, "s.yaml")


def test_a_model_that_cannot_take_a_dataset_names_both_unless_skipped(capsys):
    base = NO_DATASET
    # testnet halves its input 3 times: 12 x 12 is not for it; unet_shallow at depth 2 is.
    change = ("datasets: [{name: shapes, height: 12, width: 12, classes: 3, train: 8, val: 4},"
              f" {SHAPES_16}]\n"
              "models: [testnet, {unet_shallow: {depth: 2, base_filters: 4}}]\n")
    with pytest.raises(UsageError) as info:
        parse_spec(with_keys(change, base), "s.yaml")
    assert str(info.value) == (
        "s.yaml: models[0]: model 'testnet' cannot take dataset "
        "'shapes[height=12,width=12]': model 'testnet' cannot take input_height=12: height and "
        "width must be multiples of 8 and at least 8 (skip_incompatible: true leaves such "
        "cells out)")
    capsys.readouterr()
    spec = parse_spec(with_keys(change + "skip_incompatible: true\n", base), "s.yaml")
    small = "shapes[height=12,width=12]"
    assert spec.skipped == ((small, "testnet", "dice"), (small, "testnet", "focal(gamma=2)"))
    assert len(spec.grid) == 2 * 2 * 2 - 2 and spec.cells == 6 * 2
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert notes == [
        f"zoobench: note: s.yaml: skip_incompatible: leaving out {small} x testnet x {loss}: "
        f"model 'testnet' cannot take input_height=12: height and width must be multiples of "
        f"8 and at least 8" for loss in ("dice", "focal(gamma=2)")]
    # The plan runs the cells left, each on every seed, by a cell grid.
    from bench.common.cells import resolve

    configs = [resolve(v["config"]) for _, v in
               generate_variants({"config": make_plan(spec).param_space})]
    assert sorted((c["dataset"], c["model"], c["loss"], c["seed"]) for c in configs) == sorted(
        (*cell, s) for cell in spec.grid for s in spec.seeds)
    assert not any(c["dataset"] == small and c["model"] == "testnet" for c in configs)


def test_a_loss_that_cannot_take_a_datasets_classes_is_a_misfit_too():
    base = NO_DATASET
    change = (f"datasets: [{SHAPES_16}, {DIGITS_16}]\nmodels: [testnet]\n"
              "losses: [dice, {focal: {alpha: [0.2, 0.3, 0.5]}}]\n")
    with pytest.raises(UsageError, match=r"^s.yaml: losses\[1\]: loss 'focal\(alpha=\[0.2, 0.3, "
                                         r"0.5\]\)' cannot take dataset 'digits': focal: alpha "
                                         r"has 3 entries but y_pred needs 11"):
        parse_spec(with_keys(change, base), "s.yaml")
    spec = parse_spec(with_keys(change + "skip_incompatible: true\n", base), "s.yaml")
    assert spec.skipped == (("digits", "testnet", "focal(alpha=[0.2, 0.3, 0.5])"),)


def test_skip_incompatible_with_nothing_left_is_an_error():
    base = NO_DATASET
    change = ("datasets: [{name: shapes, height: 12, width: 12, classes: 3, train: 8, val: 4}]\n"
              "models: [testnet]\nskip_incompatible: true\n")
    with pytest.raises(UsageError, match=r"^s.yaml: skip_incompatible: no dataset x model x "
                                         r"loss cell is left"):
        parse_spec(with_keys(change, base), "s.yaml")


def test_a_spec_pickled_by_an_older_zoobench_unpickles_with_its_dataset():
    """Tune keeps the driver's callbacks (and the spec they hold) in its experiment state: a
    sweep resumed after an upgrade unpickles a spec of the one-``dataset`` layout."""
    from bench.spec.model import SweepSpec, parse_spec

    spec = parse_spec(
        "name: old\ndataset: {name: shapes, height: 16, width: 16}\nmodels: [testnet]\n"
        "losses: [dice]\nepochs: 1\n", "old.yaml")
    state = dict(spec.__dict__)
    first = state.pop("datasets")[0]
    state.update(dataset=first.name, dataset_options=first.options)
    state.pop("skipped", None)  # a field the older layout did not have
    old = SweepSpec.__new__(SweepSpec)
    old.__setstate__(state)
    assert (old.dataset, old.dataset_options) == ("shapes", {"height": 16, "width": 16})
    assert old.datasets[0].label == "shapes" and old.skipped == ()
    assert old == spec
