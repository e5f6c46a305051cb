"""TensorFlow imported in zoobench's processes without Keras' optional integrations
(``bench.common.tensorflow_import``): what is kept out, what still works, and the way back.

Each case runs in a fresh interpreter: the test session has imported TensorFlow whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KEPT_OUT = ("sklearn", "matplotlib.pyplot", "IPython")


def _python(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter; the JSON it prints last."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environ, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "stderr": done.stderr}


STATE = f"""
import json, sys
KEPT_OUT = {KEPT_OUT!r}
def state(**more):
    print(json.dumps({{"loaded": [m for m in KEPT_OUT if sys.modules.get(m) is not None],
                      "blocked": [m for m in KEPT_OUT if m in sys.modules
                                  and sys.modules[m] is None], **more}}))
"""


def test_a_worker_trains_without_the_integrations_and_they_import_afterwards() -> None:
    out = _python(STATE + """
from bench.run.trial.run import configure_tensorflow
configure_tensorflow(1.0)  # a trial worker's first TensorFlow import
import numpy as np, keras, zoo
during = [m for m in KEPT_OUT if sys.modules.get(m) is not None]
model, _, _ = zoo.get_model("testnet", 16, 16, 1, 3)
model.compile(optimizer="adam", loss=zoo.get_loss("dice"))
x = np.random.default_rng(0).random((4, 16, 16, 1), dtype=np.float32)
y = keras.utils.to_categorical(np.zeros((4, 16, 16)), 3)
loss = model.fit(x, y, epochs=1, verbose=0).history["loss"][0]
import sklearn, matplotlib.pyplot  # the modules import as usual afterwards
try:
    keras.wrappers.SKLearnClassifier(model=None)
    wrapper = "made"
except ImportError as error:
    wrapper = str(error)
state(during=during, loss=float(loss), sklearn=sklearn.__name__, wrapper=wrapper)
""")
    assert out["during"] == []  # nothing of the three while TensorFlow and Keras came in
    assert out["blocked"] == []  # and no entry left that would refuse a later import
    assert out["loss"] > 0 and out["sklearn"] == "sklearn"
    assert set(out["loaded"]) == {"sklearn", "matplotlib.pyplot"}
    assert "requires `scikit-learn`" in out["wrapper"]  # Keras' not-installed path


def test_whole_keras_on_request_and_modules_already_loaded_stay() -> None:
    whole = _python(STATE + """
from bench.common.tensorflow_import import import_tensorflow
import_tensorflow()
state()
""", ZOOBENCH_KERAS_INTEGRATIONS="1")
    assert set(whole["loaded"]) == set(KEPT_OUT)
    first = _python(STATE + """
import sklearn
before = sys.modules["sklearn"]
from bench.common.tensorflow_import import import_tensorflow
import_tensorflow()
import keras.src.wrappers.sklearn_wrapper as wrapper
state(same=sys.modules["sklearn"] is before, real=wrapper.sklearn is before)
""")
    assert first["same"] and first["real"]  # loaded before: never taken away
    assert first["blocked"] == []


def test_quiet_import_prints_nothing_and_a_failed_import_puts_everything_back() -> None:
    quiet = _python(STATE + """
from bench.common.tensorflow_import import import_tensorflow
import_tensorflow(quiet=True)
state(tf="tensorflow" in sys.modules)
""", TF_CPP_MIN_LOG_LEVEL="0")
    assert quiet["tf"] and quiet["loaded"] == []
    assert not [line for line in quiet["stderr"].splitlines()
                if "absl" in line or "oneDNN" in line]
    failed = _python(STATE + """
import os, importlib.abc
class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow":
            raise ImportError("no tensorflow here")
sys.meta_path.insert(0, NoTensorFlow())
from bench.common.tensorflow_import import import_tensorflow
try:
    import_tensorflow(quiet=True)
except ImportError as error:
    message = str(error)
os.write(2, b"stderr is back\\n")
state(message=message)
""")
    assert failed["message"] == "no tensorflow here"
    assert failed["blocked"] == []
    assert "stderr is back" in failed["stderr"]


def test_the_whole_keras_setting_reaches_the_workers(monkeypatch) -> None:
    from bench.run.sweep import worker_variables

    monkeypatch.delenv("ZOOBENCH_KERAS_INTEGRATIONS", raising=False)
    assert "ZOOBENCH_KERAS_INTEGRATIONS" not in worker_variables()
    monkeypatch.setenv("ZOOBENCH_KERAS_INTEGRATIONS", "1")
    variables = worker_variables()
    assert variables["ZOOBENCH_KERAS_INTEGRATIONS"] == "1"
    assert variables["TUNE_FUNCTION_THREAD_TIMEOUT_S"]  # the others are still there
