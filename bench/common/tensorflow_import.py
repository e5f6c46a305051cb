"""TensorFlow imported for zoobench's own processes: without Keras' optional integrations,
and (``quiet``) without its native start-up lines.

``import tensorflow`` imports Keras whole, and Keras imports what its integrations might
use if it is installed: scikit-learn for ``keras.wrappers`` (which pulls SciPy's stats),
``matplotlib.pyplot`` for ``keras.visualization``, IPython to tell whether a file editor
runs in a notebook. MLflow installs scikit-learn and matplotlib, so on a zoobench
machine they are always there: 1.25 s of TensorFlow's 4.3 s import on 2 cores (``python
-X importtime``; 0.72-0.87x the time without them, ``tests/perf/tensorflow_import.py``), paid by the
spec check's child and by every trial worker's start. None of them is used there: the
trials draw their pictures with ``matplotlib.figure``, not pyplot. So zoobench's
processes import TensorFlow with those modules kept out for the length of the import:
Keras then takes the path it takes where they are not installed (``keras.wrappers``'
classes refuse to be made; the rest of Keras is the same), and afterwards they import as
usual. TensorFlow's own ``tf.learn`` did the same with scikit-learn (tensorflow#2178).
``ZOOBENCH_KERAS_INTEGRATIONS=1`` imports Keras whole, for a plugin that needs them.
A process that imported TensorFlow already (a notebook, the tests) is left as it is.
"""

from __future__ import annotations

import os
import sys

#: What Keras imports for an optional integration, if it is installed, that zoobench's
#: processes never use (module docstring).
KEPT_OUT = ("sklearn", "matplotlib.pyplot", "IPython")
WHOLE_KERAS_VARIABLE = "ZOOBENCH_KERAS_INTEGRATIONS"


def import_tensorflow(quiet: bool = False) -> None:
    """Import TensorFlow (and with it Keras) once, without ``KEPT_OUT`` unless
    ``$ZOOBENCH_KERAS_INTEGRATIONS`` is ``1``; ``quiet``: with the process's stderr (fd 2)
    sent to /dev/null meanwhile.

    Its native start-up lines (absl's "All log messages before absl::InitializeLog()",
    oneDNN's "custom operations are on") are written by C++ before any Python setting
    can reach them; ``TF_CPP_MIN_LOG_LEVEL`` no longer stops them. A failed import still
    raises its Python error, after stderr and the kept-out modules are back.
    """
    if "tensorflow" in sys.modules:
        return
    kept_out = [] if os.environ.get(WHOLE_KERAS_VARIABLE) == "1" else [
        name for name in KEPT_OUT if name not in sys.modules]
    for name in kept_out:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    if quiet:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        if quiet:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)
        for name in kept_out:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
