"""Start-up log lines kept off the console (TensorFlow's own: ``tensorflow_import``)."""

from __future__ import annotations

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
