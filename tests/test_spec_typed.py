"""The typed spec (issue 27): problems with their YAML lines, the JSON Schema of ``zoobench
schema``, names matched whole (issue 26), and paths read from the spec's folder (issue 30)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from jsonschema import Draft202012Validator
from PIL import Image

from bench.common.errors import UsageError
from bench.spec.model import DEFAULT_SPEC, NAME_PATTERN, SpecError, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
SMALL = "{name: shapes, height: 16, width: 16, classes: 3, train: 8, val: 4}"


def test_every_problem_carries_its_yaml_line():
    text = (f"name: t\ndataset: {SMALL}\nmodels:\n  - testnet\n  - unet3\nlosses: [dice]\n"
            "params:\n  lr: -1\n  momentum: 0.9\nepochs: 0\n")
    with pytest.raises(SpecError) as info:
        parse_spec(text, "s.yaml")
    # Unknown keys first, then in the order the checks depend on each other; lines 1-based.
    assert [(p.path, p.line) for p in info.value.problems] == [
        ("params.momentum", 9), ("params.lr", 8), ("models[1]", 5), ("epochs", 10)]
    assert info.value.problems[1].message == "must be greater than 0.0, got -1"
    assert str(info.value).splitlines()[0] == "s.yaml: 4 problems:"


def test_a_missing_key_has_no_line_and_a_yaml_error_has_its_own():
    with pytest.raises(SpecError) as info:
        parse_spec(f"dataset: {SMALL}\nlosses: [dice]\n", "s.yaml")
    assert info.value.problems == (("models", None, "missing (required)"),)
    with pytest.raises(SpecError) as info:
        parse_spec("epochs: 2\n\nepochs: 3\n", "s.yaml")
    assert str(info.value) == "s.yaml: line 3: duplicate key 'epochs' (first given on line 1)"
    assert info.value.problems[0].line == 3


@pytest.mark.parametrize("key", ["name", "register_best"])
def test_a_name_with_a_trailing_newline_is_refused(key):
    # ``re.match`` with ``$`` passes "smoke\n"; a sweep folder or registry name must not.
    assert NAME_PATTERN.match("smoke\n") and not NAME_PATTERN.fullmatch("smoke\n")
    text = f'{key}: "smoke\\n"\ndataset: {SMALL}\nmodels: [testnet]\nlosses: [dice]\n'
    with pytest.raises(UsageError, match=rf"^s.yaml: {key}: 'smoke\\n' is not allowed"):
        parse_spec(text, "s.yaml")
    with pytest.raises(UsageError, match=r"^s.yaml: name: 'x\\n' is not allowed"):
        parse_spec(text.split("\n", 1)[1], "s.yaml", name="x\n")  # --name is checked too


# ---------------------------------------------------------------- paths (issue 30 item 1)


def _image_folder(folder: Path, n: int = 10) -> None:
    """``n`` 16 x 16 RGB images and masks of classes 0/1 (a square), as the folder dataset
    reads them."""
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
    for i in range(n):
        mask = np.zeros((16, 16), np.uint8)
        mask[4:12, 2 + i % 4:10 + i % 4] = 1
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            folder / "images" / f"{i}.png")
        Image.fromarray(mask).save(folder / "masks" / f"{i}.png")


def _folder_spec(path: str) -> str:
    return (f"name: own\ndataset: {{name: folder, path: {path}, height: 16, width: 16, "
            f"classes: 2}}\nmodels: [testnet]\nlosses: [dice]\n")


def test_a_relative_path_is_read_from_the_spec_files_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    _image_folder(project / "mydata")
    (project / "spec.yaml").write_text(_folder_spec("mydata"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_spec(project / "spec.yaml")
    # Trials get the absolute path, wherever their worker's working folder is.
    assert spec.dataset_options["path"] == str((project / "mydata").resolve())
    # The embedded default and a spec given as text read from the working folder.
    monkeypatch.chdir(project)
    assert parse_spec(_folder_spec("mydata"), "t.yaml").dataset_options["path"] == str(
        (project / "mydata").resolve())


def test_a_missing_path_fails_before_any_trial_naming_it_and_where_it_was_looked_for(
        tmp_path):
    (tmp_path / "spec.yaml").write_text(_folder_spec("nodata"))
    with pytest.raises(UsageError) as info:
        load_spec(tmp_path / "spec.yaml")
    assert str(info.value) == (
        f"{tmp_path / 'spec.yaml'}: dataset: path nodata does not exist (relative paths are "
        f"read from the spec's folder, {tmp_path.resolve()})")
    # The folder exists but is not laid out as the dataset expects: the loader says so.
    (tmp_path / "empty").mkdir()
    (tmp_path / "spec.yaml").write_text(_folder_spec("empty"))
    with pytest.raises(UsageError) as info:
        load_spec(tmp_path / "spec.yaml")
    assert str(info.value) == (
        f"{tmp_path / 'spec.yaml'}: dataset: dataset 'folder': folder "
        f"{(tmp_path / 'empty').resolve()} is empty; expected images/ and masks/ (or train/ and "
        "val/)")


def test_an_npz_path_is_resolved_too(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "frames.npz", x=rng.random((10, 16, 16, 1), dtype=np.float32),
             y=rng.integers(0, 2, (10, 16, 16), dtype=np.uint8))
    (tmp_path / "s.yaml").write_text("dataset: {name: npz, path: frames.npz, classes: 2}\n"
                                     "models: [testnet]\nlosses: [dice]\n")
    monkeypatch.chdir(ROOT)
    spec = load_spec(tmp_path / "s.yaml")
    assert spec.dataset_options["path"] == str((tmp_path / "frames.npz").resolve())


# ---------------------------------------------------------------- the JSON Schema


def _zoobench_schema(*args: str, cwd: Path = ROOT, path: str = "") -> dict:
    """``zoobench schema ARGS`` in a fresh process (no other test's plugin registered)."""
    env = {"PYTHONPATH": f"{ROOT}:{path}", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "bench", "schema", *args], env=env,
                          capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def schema() -> dict:
    schema = _zoobench_schema()
    Draft202012Validator.check_schema(schema)
    return schema


def test_the_committed_schema_is_the_generated_one(schema):
    # What the reference spec's $schema line points an editor to; regenerate it with
    # ``zoobench schema > docs/spec.schema.json``.
    assert json.loads((ROOT / "docs" / "spec.schema.json").read_text()) == schema


def _errors(schema: dict, text: str) -> list[str]:
    return [e.message for e in Draft202012Validator(schema).iter_errors(yaml.safe_load(text))]


def test_the_schema_takes_the_reference_and_default_specs(schema):
    reference = (ROOT / "results" / "reference" / "spec.yaml").read_text()
    assert reference.startswith("# yaml-language-server: $schema=")
    assert _errors(schema, reference) == []
    assert _errors(schema, DEFAULT_SPEC) == []


@pytest.mark.parametrize(("change", "message"), [
    (("models", "modles"), "Additional properties are not allowed ('modles' was unexpected)"),
    (("epochs", "epochs", 0), "0 is less than the minimum of 1"),
])
def test_the_schema_refuses_what_the_spec_refuses(schema, change, message):
    spec = yaml.safe_load(DEFAULT_SPEC)
    spec[change[1]] = spec.pop(change[0]) if len(change) == 2 else change[2]
    assert _errors(schema, yaml.safe_dump(spec)) == [message]
    with pytest.raises(UsageError):
        parse_spec(yaml.safe_dump(spec), "s.yaml")


def test_the_registries_fill_the_schema(schema):
    import zoo

    properties = schema["properties"]
    assert properties["models"]["anyOf"][0]["enum"] == zoo.list_models()
    testnet = properties["models"]["anyOf"][1]["items"]["anyOf"][1]["properties"]["testnet"]
    assert set(testnet["properties"]) == set(zoo.describe_model("testnet").options)
    shapes = next(d for d in properties["dataset"]["anyOf"] if d.get("title") == "shapes")
    assert shapes["properties"]["height"] == {"type": "integer", "default": 64,
                                              "description": "image height in pixels"}
    assert _errors(schema, DEFAULT_SPEC.replace("height: 32", "heigth: 32"))
    assert _errors(schema, DEFAULT_SPEC.replace("[testnet,", "[{testnet: {depth: 3}},"))
    focal = properties["losses"]["anyOf"][1]["items"]["anyOf"][1]["properties"]["focal"]
    assert focal["properties"]["gamma"] == {"default": 2.0}


def test_zoobench_schema_lists_a_plugins_model(tmp_path):
    from bench.commands.schema import _spec_plugins

    (tmp_path / "schema_plugin.py").write_text(
        "import zoo\nfrom zoo.models.testnet import build_testnet\n"
        "zoo.register_model('schema_net', kind='image', divisor=8, min_size=8,\n"
        "                   options={'base_filters': 8, 'batch_norm': True})(build_testnet)\n")
    (tmp_path / "s.yaml").write_text("plugins: schema_plugin\nmodels: [schema_net]\n")
    assert _spec_plugins(tmp_path / "s.yaml") == ["schema_plugin"]
    schema = _zoobench_schema(str(tmp_path / "s.yaml"), cwd=tmp_path, path=str(tmp_path))
    assert "schema_net" in schema["properties"]["models"]["anyOf"][0]["enum"]
    assert _errors(schema, (tmp_path / "s.yaml").read_text()) == []
