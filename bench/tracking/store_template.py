"""A new SQLite tracking store made ahead of time, while the spec is still being checked.

MLflow makes a new SQLite store by running every schema migration since its first one:
1.4-1.8 s of CPU on 2 cores (MLflow 3.17), paid by every sweep in a new results folder,
after its spec was accepted and before its first trial. ``zoobench sweep`` checks the spec
in a child process (``bench.spec.check_process``) and the driver only waits meanwhile, so
``prepare`` makes the store then, in a background thread, in a temporary folder (a
refused spec must leave no results folder behind), and ``install`` copies it into place
when the sweep starts its tracking (``bench.tracking.runs.start_sweep``, under the
store's lock) if no store is there yet.

The migrations' result is the same for every store of one MLflow version, so it is kept
between sweeps (``template_file``: in ``$ZOOBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/zoobench``
or ``~/.cache/zoobench``, one file per MLflow version) and later stores are a copy of it:
on 2 cores the machine is busy with the spec's check and Ray's start, and the migrations'
CPU held the first trial back by 1.2-1.4 s. The kept file has no experiment in it: MLflow
makes its ``Default`` experiment itself when it opens the copy (in the same thread, in this
process, as for a store it made: its artifact location is resolved against this process's
working folder).

The copy is the store MLflow would have made: the same tables, the migrations stamped.
Anything that goes wrong here (no cache folder, a damaged file) only means MLflow makes the
store itself, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

_SQLITE = "sqlite:///"
_WAIT_S = 30.0  # at most, for a store being made (making one anew takes as long)
_pending: dict[str, tuple[Future, Path]] = {}
_partials: set[Path] = set()  # cache files being written (removed at exit if unfinished)
_lock = threading.Lock()


def template_file() -> Path:
    """Where this MLflow version's migrated, empty store is kept between sweeps."""
    from mlflow.version import VERSION

    root = os.environ.get("ZOOBENCH_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zoobench"
    return Path(root) / f"mlflow-{VERSION}-store.db"


def _remove(scratch: Path) -> None:
    """Delete a scratch folder, also while the thread making its store still writes there:
    SQLite may add a journal file between rmtree's listing and its rmdir, and once the folder
    is gone it can make none, so a few tries end with the folder gone (5 s at most)."""
    give_up = time.monotonic() + 5.0
    while True:
        shutil.rmtree(scratch, ignore_errors=True)
        if not scratch.exists() or time.monotonic() > give_up:
            return
        time.sleep(0.01)


def _remove_abandoned() -> None:
    """At exit (a refused spec's command), the stores that no sweep installed.

    A store still being made fails once its folder is gone, and MLflow logs that failure
    (with its traceback) after the command's own last line. This process logs nothing
    through MLflow, Alembic or SQLAlchemy after its command has returned, so their loggers
    are turned off first.
    """
    with _lock:
        abandoned = list(_pending.values())
        _pending.clear()
        partials = list(_partials)
    if any(not future.done() for future, _ in abandoned):
        _silence(("mlflow", "alembic", "sqlalchemy"))
    for _, scratch in abandoned:
        _remove(scratch)
    for partial in partials:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def _silence(prefixes: tuple[str, ...]) -> None:
    """Every logger named ``prefix`` or below it logs nothing from now on. A parent's level
    alone is not enough: a module's logger with a level of its own (``quiet`` sets
    ``mlflow.store.db.utils`` to ERROR) passes its records on to the parent's handlers."""
    names = [name for name in list(logging.Logger.manager.loggerDict)
             if name.startswith(tuple(f"{prefix}." for prefix in prefixes))]
    for name in (*prefixes, *names):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


atexit.register(_remove_abandoned)


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` tracking URI; None for any other URI."""
    return Path(uri.removeprefix(_SQLITE)) if uri.startswith(_SQLITE) else None


def prepare(uri: str) -> bool:
    """Start making, in a background thread, the store ``install(uri)`` will copy; False
    (nothing started) when ``uri`` is not a SQLite file that is missing."""
    file = sqlite_file(uri)
    with _lock:
        if file is None or file.exists() or uri in _pending:
            return False
        scratch = Path(tempfile.mkdtemp(prefix="zoobench-store-"))
        future: Future = Future()
        _pending[uri] = (future, scratch)
    # A daemon: a refused spec's command exits without waiting for it (``_remove_abandoned``
    # deletes its folder; tempfile's own finaliser raised when a journal file appeared mid-way).
    threading.Thread(target=_make, args=(scratch / "mlflow.db", future),
                     name="zoobench-store", daemon=True).start()
    return True


def _make(file: Path, future: Future) -> None:
    try:
        from mlflow.tracking import MlflowClient

        template = template_file()
        copied = _copy_template(template, file)
        # Makes the store (the migrations), or the copy's Default experiment; either way
        # MLflow's and SQLAlchemy's first use (~1 s on 2 cores) is paid here, not by the sweep.
        MlflowClient(tracking_uri=f"{_SQLITE}{file}").search_experiments(max_results=1)
        if not copied:
            _keep(file, template)
        future.set_result(file)
    except BaseException as error:  # noqa: BLE001  (told to install, which gives up)
        future.set_exception(error)


def _copy_template(template: Path, file: Path) -> bool:
    """Copy the kept store to ``file``; False (nothing copied) when there is none or it is
    not sound: damaged, not stamped once, or holding an experiment."""
    if not template.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{template.as_uri()}?mode=ro",
                                                uri=True)) as source:
            sound = (source.execute("pragma quick_check").fetchall() == [("ok",)]
                     and source.execute("select count(*) from alembic_version").fetchone()
                     == (1,)
                     and source.execute("select count(*) from experiments").fetchone() == (0,))
            if sound:
                with contextlib.closing(sqlite3.connect(file)) as target:
                    source.backup(target)
        return sound
    except sqlite3.Error:  # not a database, a missing table: made anew and kept again
        file.unlink(missing_ok=True)
        return False


def _backup(source: Path, partial: Path, target: Path, *edits: str) -> None:
    """Copy the SQLite database ``source`` to ``target`` through ``partial`` beside it,
    renamed into place (a reader never sees half a file), after running ``edits`` on the
    copy. SQLite's backup copies a consistent database whatever its journal mode."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(source)) as origin, \
            contextlib.closing(sqlite3.connect(partial)) as copy:
        origin.backup(copy)
        for edit in edits:
            copy.execute(edit)
        copy.commit()
    os.replace(partial, target)


def _keep(made: Path, template: Path) -> None:
    """Keep the store MLflow just made, without its experiments, as ``template`` (best
    effort: written aside and renamed, so a reader never sees half a file)."""
    partial = template.with_name(f".{template.name}.{os.getpid()}.tmp")
    with _lock:
        _partials.add(partial)
    try:
        # The Default experiment goes: MLflow makes it for the folder that opens a copy.
        _backup(made, partial, template, "delete from experiment_tags",
                "delete from experiments")
    except (OSError, sqlite3.Error):  # a read-only home: every store is made, as before
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    finally:
        with _lock:
            _partials.discard(partial)


def install(uri: str) -> bool:
    """Copy the store ``prepare(uri)`` made to ``uri``'s file if that file is still missing;
    True when it did. Call it holding the store's lock (two sweeps may share a store)."""
    file = sqlite_file(uri)
    with _lock:
        pending = _pending.pop(uri, None)
    if pending is None or file is None:
        return False
    future, scratch = pending
    partial = file.with_name(f".{file.name}.zoobench-tmp")
    try:
        if file.exists():
            return False
        _backup(future.result(timeout=_WAIT_S), partial, file)
        return True
    except Exception:  # noqa: BLE001  (MLflow makes the store itself, as without a template)
        partial.unlink(missing_ok=True)
        return False
    finally:
        _remove(scratch)
