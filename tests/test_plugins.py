"""Plugins: a model and a loss defined in the user's own module are validated, swept (real
Ray workers that import the module), tracked and ranked like the built-in ones; a plugin that
cannot be imported is a one-line exit-2 error naming it; entry points load too."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''\
"""A user's plugin: one model, one loss."""
import keras

import zoo


@zoo.register_model("plugin_net", kind="image", options={"filters": 4})
def build_plugin_net(input_height, input_width, input_channels, n_classes, *, filters):
    """Two convolutions, softmax over the classes."""
    inputs = keras.Input((input_height, input_width, input_channels))
    hidden = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Conv2D(n_classes, 1, activation="softmax")(hidden)
    return keras.Model(inputs, outputs, name="plugin_net")


@zoo.register_loss("plugin_loss", params={"scale": 1.0})
def plugin_loss(scale=1.0):
    """Scaled crossentropy plus Dice."""
    return scale * zoo.get_loss("categorical_crossentropy") + zoo.get_loss("dice")
'''

SPEC = """\
name: plug
plugins: [{module}]
dataset: {{name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 16, val: 8,
          test: 8}}
models: [{{plugin_net: {{filters: 6}}}}]
losses: [{{plugin_loss: {{scale: 0.5}}}}]
seeds: [0]
epochs: 1
params: {{batch_size: 8, lr: 1.0e-3}}
"""


def _sweep_in_a_process(spec: Path, results: Path, pythonpath: str) -> subprocess.CompletedProcess:
    """``python -m bench sweep`` in its own process group (its own local Ray), killed whole on
    a timeout. Its workers inherit PYTHONPATH: that is how they import the plugin."""
    env = {**os.environ, "PYTHONPATH": pythonpath}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", "sweep", str(spec), "--results", str(results)],
        env=env, cwd=spec.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        out, err = process.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"the plugin sweep timed out:\n{err[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.slow  # a real sweep: ~45 s
def test_plugin_model_and_loss_are_swept_tracked_and_ranked(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "my_plugin_zoo.py").write_text(PLUGIN)
    spec = tmp_path / "plug.yaml"
    spec.write_text(SPEC.format(module="my_plugin_zoo"))
    results = tmp_path / "results"
    done = _sweep_in_a_process(spec, results, os.pathsep.join([str(REPO), str(plugins)]))
    assert done.returncode == 0, done.stderr[-3000:]

    trials = pd.read_parquet(results / "trials.parquet")
    assert len(trials) == 1
    trial = trials.iloc[0]
    assert trial["model"] == "plugin_net(filters=6)" and trial["loss"] == "plugin_loss(scale=0.5)"
    assert trial["status"] == "TERMINATED" and trial["epochs_done"] == 1
    assert 0.0 <= trial["test_mean_iou"] <= 1.0
    # 3x3 conv 3->6 plus bias, 1x1 conv 6->3 plus bias.
    assert trial["n_params"] == 3 * 3 * 3 * 6 + 6 + 6 * 3 + 3
    assert trial["flops"] >= 2 * 16 * 16 * (9 * 3 * 6 + 6 * 3) and trial["latency_ms"] > 0
    assert "plugins: [my_plugin_zoo]" in trial["spec"]  # the row says what reproduces it

    board = pd.read_parquet(results / "leaderboard.parquet")
    assert list(board["model"]) == ["plugin_net(filters=6)"]
    assert board["val_mean_iou_mean"].iloc[0] == pytest.approx(trial["val_mean_iou"])

    run = MlflowClient(f"sqlite:///{results / 'mlflow.db'}").get_run(trial["mlflow_run_id"])
    assert run.data.params["model_name"] == "plugin_net"
    assert run.data.params["loss_name"] == "plugin_loss"
    assert run.info.status == "FINISHED"


def _bad_spec(tmp_path: Path, module: str) -> Path:
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.format(module=module))
    return spec


def test_a_missing_plugin_module_exits_2_naming_it(tmp_path, capsys):
    spec = _bad_spec(tmp_path, "no_such_plugin_module_xyz")
    assert run_cli("sweep", str(spec), "--results", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err
    assert err == (f"zoobench: error: {spec}: plugins[0]: cannot import plugin module "
                   f"'no_such_plugin_module_xyz' (ModuleNotFoundError: No module named "
                   f"'no_such_plugin_module_xyz')\n")
    assert not (tmp_path / "r").exists()  # nothing started


def test_a_plugin_whose_code_raises_exits_2_with_its_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "broken_plugin_abc.py").write_text("raise RuntimeError('no GPU here\\nmore')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = _bad_spec(tmp_path, "broken_plugin_abc")
    assert run_cli("sweep", str(spec), "--results", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err
    assert err == (f"zoobench: error: {spec}: plugins[0]: cannot import plugin module "
                   f"'broken_plugin_abc' (RuntimeError: no GPU here)\n")


@pytest.mark.parametrize("value", ["[1, 2]", "{a: b}", "['']"])
def test_plugins_must_be_module_names(tmp_path, capsys, value):
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"plugins: {value}\ndataset: shapes\nmodels: [testnet]\nlosses: [dice]\n")
    assert run_cli("sweep", str(spec), "--results", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"zoobench: error: {spec}: plugins: must be a list of module names")
    assert err.count("\n") == 1


def test_entry_point_plugins_load_with_their_dataset(tmp_path, monkeypatch, capsys):
    """An installed package's ``zoobench.plugins`` entry point registers a dataset that the
    spec then accepts (and ``zoobench datasets`` lists)."""
    import zoo
    from bench.spec.model import parse_spec
    from bench.spec.plugins import load_entry_points

    (tmp_path / "ep_plugin_data.py").write_text(textwrap.dedent('''\
        import numpy as np
        import zoo

        @zoo.datasets.register_dataset("ep_stripes", options={"size": 16})
        def build(*, seed, size):
            """Vertical stripes, two classes."""
            x = np.zeros((12, size, size, 1), "float32")
            x[:, :, ::2] = 1.0
            y = x[..., 0].astype("int32")
            return zoo.datasets.SplitArrays(x[:6], y[:6], x[6:9], y[6:9], 1, ["stripe"],
                                            x_test=x[9:], y_test=y[9:])
        '''))
    info = tmp_path / "ep_plugin_data-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin-data\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[zoobench.plugins]\nstripes = ep_plugin_data\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run_cli("datasets") == 0  # loads the entry points, then lists
    assert "ep_stripes" in capsys.readouterr().out
    assert "ep_stripes" in zoo.datasets.list_datasets()
    assert load_entry_points() == []  # once per process
    spec = parse_spec("dataset: {name: ep_stripes, size: 16}\nmodels: [testnet]\n"
                      "losses: [binary_crossentropy]\n", "ep.yaml")
    assert spec.dataset == "ep_stripes" and spec.dataset_options == {"size": 16}


def test_a_worker_without_the_plugin_fails_its_trial_saying_where_and_how(monkeypatch):
    from bench.spec.plugins import import_plugins_on_worker

    with pytest.raises(ImportError) as raised:
        import_plugins_on_worker(["no_such_plugin_on_worker_q"])
    message = str(raised.value)
    assert message.startswith("plugins[0]: cannot import plugin module "
                              "'no_such_plugin_on_worker_q' (ModuleNotFoundError")
    assert "on the worker at " in message and "runtime_env py_modules" in message


def test_only_the_users_own_plugin_code_is_shipped_to_a_cluster(tmp_path, monkeypatch):
    """On a cluster (``--address``) the spec's plugins that are neither installed nor zoobench
    go to Ray as ``py_modules``: a module file as itself, a package module as its top package."""
    from bench.spec.plugins import modules_to_ship

    (tmp_path / "my_single.py").write_text("X = 1\n")
    (tmp_path / "my_pkg").mkdir()
    (tmp_path / "my_pkg" / "__init__.py").write_text("")
    (tmp_path / "my_pkg" / "models.py").write_text("Y = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    shipped = modules_to_ship(["my_single", "my_pkg.models", "my_pkg", "numpy", "json",
                               "zoo.models"])
    assert shipped == [str((tmp_path / "my_single.py").resolve()),
                       str((tmp_path / "my_pkg").resolve())]
