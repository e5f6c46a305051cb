"""The generic registry and get_model's validation, shared by every model."""

import pytest

import zoo
from zoo.registry import Registry


def test_registry_lists_in_order_filters_by_glob_and_names_alternatives():
    reg: Registry[int] = Registry("widget")
    reg.add("alpha_net", 1, summary="first")
    reg.add("beta", 2)
    reg.add("gamma_net", 3)
    assert reg.names() == ["alpha_net", "beta", "gamma_net"]
    assert reg.names("*_net") == ["alpha_net", "gamma_net"]
    assert reg.get("beta") == 2 and reg.entry("alpha_net").summary == "first"
    with pytest.raises(ValueError, match=r"unknown widget 'delta'; choose one of: alpha_net, beta"):
        reg.get("delta")
    with pytest.raises(ValueError, match="already registered"):
        reg.add("beta", 4)


def test_list_models_covers_the_contract_and_wildcards():
    from zoo.models.registry import MODELS

    # The built-in models exactly; a plugin registered earlier in this process (its builder
    # defined outside zoo) may come on top without breaking the check.
    builtin = {name for name in zoo.list_models()
               if MODELS.entry(name).obj[1].__module__.startswith("zoo.")}
    assert builtin == {
        "testnet", "unet", "unet_shallow", "segnet", "segnet_shallow",
        "lstm_unet", "lstm_shallow", "lstm_full", "lstm_next_frame", "ladder",
    }
    assert zoo.list_models("*unet*") == ["unet", "unet_shallow", "lstm_unet"]
    assert {zoo.describe_model(n).kind for n in zoo.list_models()} == {
        "image", "sequence", "semi_supervised"
    }


@pytest.mark.parametrize(
    ("name", "size", "options", "ok"),
    [
        ("unet", 8, {"depth": 2, "base_filters": 4}, True),  # 2 ** 2 divides 8
        ("unet", 24, {"depth": 3, "base_filters": 4}, True),
        ("unet", 24, {"base_filters": 4}, False),  # default depth 4 needs multiples of 16
        ("segnet", 16, {"depth": 4, "base_filters": 4}, True),
        ("segnet", 16, {"base_filters": 4}, False),  # default depth 5: multiples of 32
    ],
)
def test_size_constraint_follows_the_depth_option(name, size, options, ok):
    if ok:
        model, out_h, out_w = zoo.get_model(name, size, size, 1, 2, **options)
        assert (out_h, out_w) == (size, size)
        assert model.output_shape == (None, size, size, 2)
    else:
        with pytest.raises(ValueError, match=rf"cannot take input_height={size}: .*multiples of"):
            zoo.get_model(name, size, size, 1, 2, **options)


def test_constraint_sentence_reflects_the_defaults():
    assert zoo.describe_model("segnet").constraint == (
        "height and width must be multiples of 32 and at least 32"
    )
    assert zoo.describe_model("unet_shallow").divisor == 8


def test_get_model_names_bad_options_and_allowed_values():
    with pytest.raises(ValueError, match=r"no option 'filters'; allowed options: .*base_f"):
        zoo.get_model("testnet", 16, 16, 3, 2, filters=8)
    with pytest.raises(ValueError, match="n_classes must be a positive int"):
        zoo.get_model("testnet", 16, 16, 3, 0)
    with pytest.raises(ValueError, match="stateful=True needs timesteps and batchsize"):
        zoo.get_model("lstm_shallow", 16, 16, 1, 2, stateful=True)
    with pytest.raises(ValueError, match="unknown model 'unet3'; choose one of: testnet"):
        zoo.get_model("unet3", 16, 16, 3, 2)


def test_the_catalog_file_is_what_the_registries_say():
    """``zoo/catalog.json`` (read without TensorFlow by the listings and the report) equals
    the live registries; after a change to a model, loss or dataset: ``python -m zoo.catalog``."""
    from bench.common.zoo_catalog import zoo_catalog
    from zoo.catalog import build

    catalog = zoo_catalog()
    assert catalog == build(), "zoo/catalog.json is stale: run python -m zoo.catalog"
    assert list(catalog["models"]) == [n for n in zoo.list_models()
                                       if n in catalog["models"]]
    assert catalog["losses"]["focal"] == {
        "params": {"gamma": 2.0, "alpha": 0.25},
        "summary": zoo.describe_loss("focal")["summary"]}
    segnet = catalog["models"]["segnet"]
    assert (segnet["divisor"], segnet["constraint"]) == (
        32, "height and width must be multiples of 32 and at least 32")
    assert catalog["datasets"]["shapes"]["options"] == zoo.datasets.describe_dataset(
        "shapes").options


def test_a_plugins_entries_stay_out_of_the_catalog():
    """In a process of its own: the registration would stay in this one's registries."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    code = """if True:
        import json, zoo
        from zoo.catalog import build

        @zoo.register_loss("catalog_probe_loss", params={"k": 1})
        def probe(k=1):
            '''Registered here, by a plugin.'''
            return zoo.get_loss("dice")

        print(json.dumps([build()["losses"].get("catalog_probe_loss"),
                          build(builtin_only=False)["losses"]["catalog_probe_loss"]]))
    """
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=repo, timeout=300, check=True)
    builtin, every = json.loads(done.stdout.splitlines()[-1])
    assert builtin is None
    assert every == {"params": {"k": 1}, "summary": "Registered here, by a plugin."}
