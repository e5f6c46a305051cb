"""The spec checked in a child process, so that the driver never loads TensorFlow.

Checking a spec needs TensorFlow: zoo's registries are Keras code, a model given options
is built and a loss is called once on the dataset's classes (``zoo.compat``). Imported in
the driver, TensorFlow costs 4-5 s before Ray can start and about 0.5 GB the driver then
holds for the whole sweep. ``zoobench sweep`` instead checks the spec in a child process
while the driver starts Ray (``bench.run.sweep.start_ray_early``): the two overlap, and the
driver needs nothing of TensorFlow afterwards (the trials import it in their workers). The
child prints the spec's notes and warnings as ``load_spec`` does, and a refused spec is
the same one-line ``UsageError`` (exit 2) before any trial.

The child has TensorFlow and the zoo loaded by then, so it can be given one more job
before it ends (``then``): ``zoobench sweep`` has it build the first stage's datasets
into the sweep's data cache (``bench.run.data_cache.prebuild``) while the first trials'
workers import TensorFlow. It then ends without the interpreter's finalization
(``_leave_without_finalizing``), which with TensorFlow loaded costs most of a second of CPU
just when those workers need it.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.common.errors import UsageError
from bench.spec.model import SweepSpec


def worth_a_child() -> bool:
    """True when this process has not loaded TensorFlow: a check here would load it; a
    process that already has (a notebook, the tests) checks in place, as fast as a child."""
    return "tensorflow" not in sys.modules


class PendingSpec:
    """A spec being checked in a child process; ``result()`` waits for it.

    Use it as a context manager: leaving the block ends the child, whatever happened.
    """

    def __init__(self, path: str | Path | None, name: str | None, verbose: bool) -> None:
        # spawn, not fork: the driver may already run threads (Ray's, MLflow's).
        self._pool = ProcessPoolExecutor(max_workers=1,
                                         mp_context=multiprocessing.get_context("spawn"))
        self._future: Future = self._pool.submit(_check, path, name, verbose)
        self._child: int | None = None  # its pid, once it answered
        self._job: Future | None = None  # what ``then`` gave it

    def result(self) -> SweepSpec:
        """The checked ``SweepSpec``; ``UsageError`` (the spec's own message) when refused
        (the child is then ended)."""
        try:
            spec, refusal, self._child = self._future.result()
        except BaseException:
            self._pool.shutdown(wait=False, cancel_futures=True)
            raise
        if refusal is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            raise UsageError(refusal)
        return spec

    def then(self, job: Callable[..., Any], *args: Any) -> Future | None:
        """Have the child run ``job(*args)`` (a module-level function: it travels by
        name), then end; its future, or None when the child has ended already. Its exit
        (TensorFlow's) overlaps with the sweep, not with the command's end."""
        try:
            self._job = self._pool.submit(job, *args)
        except RuntimeError:  # ended already
            return None
        finally:
            self._pool.shutdown(wait=False)
        return self._job

    def __enter__(self) -> PendingSpec:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        with contextlib.suppress(Exception):
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._job is not None and not self._job.done() and self._child is not None:
            # The sweep ended first (interrupted, failed): the job is of no use now, and the
            # command's exit would wait for it (a big folder's build). Still running, the
            # child holds its pid.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self._child, signal.SIGTERM)


def _check(path: str | Path | None, name: str | None,
           verbose: bool) -> tuple[SweepSpec | None, str | None, int]:
    """In the child: ``(spec, None, pid)``, or ``(None, message, pid)`` for a refused spec
    (the message travels as text: a ``SpecError``'s problems need not survive pickling)."""
    from bench.common.tensorflow_import import import_tensorflow
    from bench.spec.model import load_spec

    with contextlib.suppress(ImportError):  # load_spec reports it where it is needed
        import_tensorflow(quiet=not verbose)
    if multiprocessing.parent_process() is not None:  # a child of ours, never the driver
        # Registered after TensorFlow's own exit handlers, so run before them.
        atexit.register(_leave_without_finalizing)
    try:
        return load_spec(path, name), None, os.getpid()
    except UsageError as error:
        return None, str(error), os.getpid()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _leave_without_finalizing() -> None:
    """The child's last exit handler: its output flushed, the process ends at once.

    By then its results have reached the driver and its data cache files are closed; what
    is skipped is the interpreter's finalization with TensorFlow loaded (TensorFlow's exit
    handlers, module teardown): 0.7-1.0 s of CPU on 2 cores (``tests/perf/spec_child_exit.py``),
    spent while the first trials' workers import TensorFlow and start.
    """
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)
