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


#: Loggers whose start-up lines say nothing a zoobench user acts on: MLflow creating its
#: sqlite tables on a first run, and Ray's note that the local instance zoobench starts
#: (on loopback, for this driver alone) uses token authentication.
_START_UP_LOGGERS = ("mlflow.store.db.utils", "alembic.runtime.migration")
_LOCAL_RAY_LOGGERS = ("ray._private.authentication.authentication_token_setup",)


def quiet_start_up_logs(local_ray: bool) -> None:
    """Raise the start-up loggers above INFO and WARNING, so the console starts with the
    sweep's own lines; Ray's token note only where ``local_ray`` (on a cluster the token is
    the user's to set). ``--verbose`` does not call it. Their errors still show."""
    import logging

    for name in (*_START_UP_LOGGERS, *(_LOCAL_RAY_LOGGERS if local_ray else ())):
        logging.getLogger(name).setLevel(logging.ERROR)
