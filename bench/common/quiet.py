"""TensorFlow imported without its native start-up lines on the console."""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr (fd 2) sent to /dev/null meanwhile.

    Its native start-up lines (absl's "All log messages before absl::InitializeLog()",
    oneDNN's "custom operations are on") are written by C++ before any Python setting
    can reach them; ``TF_CPP_MIN_LOG_LEVEL`` no longer stops them. A failed import still
    raises its Python error after stderr is back.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
