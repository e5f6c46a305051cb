"""Checks that keep a sweep from overwriting what it should not, run before any trial starts.

- ``usable_folder``: ``--results`` (and a local ``--storage``) is a folder this process can
  write, created if missing; else one line, exit 2.
- ``SweepLock``: one run per sweep name and results folder at a time. The lock is
  ``<results>/locks/<name>.lock``, held with ``fcntl.flock``: the kernel drops it when its
  owner dies, so a killed run never leaves it stuck. The file says who holds it (host, pid)
  for the message the second run prints.
- ``sweep_locks``: that lock, and the same under a local ``--storage`` (where Tune keeps
  the experiment's state; ``<storage>/.zoobench-locks/<name>.lock``): two results folders
  on one storage cannot run one experiment at once either.
- ``check_same_spec`` / ``record_spec``: a sweep name resumes only with the spec it ran with,
  compared as parsed YAML (comments and key order do not matter). The copy lives next to the
  Parquet (``<results>/specs/<name>.yaml``), so a rerun with another ``--storage`` or after
  deleting ``<results>/ray`` is refused too, and beside Tune's experiment state, read through
  pyarrow's filesystems so ``s3://`` and ``gs://`` URIs are never squashed into a ``Path``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

from bench.common.errors import UsageError

if TYPE_CHECKING:
    pass

SPEC_COPY = "zoobench-spec.yaml"  # beside Tune's experiment state (a local path or a URI)
LOCKS, SPECS = "locks", "specs"  # folders under the results folder
# Under a local --storage, beside Tune's experiment folders (named after sweeps): hidden,
# so that no sweep name can be it.
STORAGE_LOCKS = ".zoobench-locks"


def usable_folder(folder: Path, flag: str = "--results") -> Path:
    """``folder`` resolved and created; ``UsageError`` naming ``flag`` when it cannot be used."""
    resolved = Path(folder).expanduser().resolve()
    if resolved.exists() and not resolved.is_dir():
        raise UsageError(f"{flag}: {folder} is a file, not a folder")
    try:
        resolved.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{flag}: cannot create {folder} ({error.strerror or error})") \
            from None
    if not os.access(resolved, os.W_OK | os.X_OK):
        raise UsageError(f"{flag}: {folder} is not writable")
    return resolved


def _owner_text(path: Path) -> str:
    """``host H, pid P`` from a lock file's owner record (or what is known of it)."""
    try:
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        owner = {}
    return f"host {owner.get('host', '?')}, pid {owner.get('pid', '?')}"


class SweepLock:
    """An exclusive, process-lifetime lock on one sweep name under a results folder.

    Use as a context manager, or ``acquire()`` / ``release()``. The lock is released by
    ``release()``, by the process exiting, or by the process being killed (``flock``).
    """

    def __init__(self, results: Path, sweep: str, flag: str = "--results",
                 locks: str = LOCKS) -> None:
        self.path = Path(results) / locks / f"{sweep}.lock"
        self.sweep, self.flag = sweep, flag
        self._file: IO[str] | None = None

    def acquire(self) -> SweepLock:
        """Take the lock, or raise ``UsageError`` saying who holds it (host, pid, lock path)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115  (held open for the lock's lifetime)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise UsageError(f"{self.flag}: cannot lock {self.path} ({error.strerror})") \
                    from None
            raise UsageError(
                f"sweep {self.sweep!r} is already running ({_owner_text(self.path)}; "
                f"lock {self.path}); wait for it to end, or pick another --name"
            ) from None
        # Ours now: say who holds it, for the message another run prints.
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                 "started": time.time()}))
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; an unlocked file is a free lock)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> SweepLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def sweep_locks(results: Path, storage: str, sweep: str) -> Iterator[None]:
    """Hold ``sweep``'s lock under ``results`` and, when ``storage`` (Tune's storage: a local
    path, or a ``scheme://`` URI) is a local folder, under ``storage`` too.

    Tune's experiment state lives under the storage, so two results folders sharing one
    storage would otherwise run (and resume) the same experiment at once. A URI storage
    (``s3://``) cannot be locked: one lock per results folder is what remains there.
    """
    with contextlib.ExitStack() as stack:
        stack.enter_context(SweepLock(results, sweep))
        if "://" not in storage:
            stack.enter_context(SweepLock(Path(storage), sweep, "--storage", STORAGE_LOCKS))
        yield


# ---- the spec a sweep name ran with


def _join(base: str, *parts: str) -> str:
    """``base/part/...`` for a local path or a URI (never through ``Path``, which eats ``//``)."""
    return "/".join([base.rstrip("/"), *parts])


def _read_text(location: str) -> str | None:
    """The text at a local path or a ``scheme://`` URI; None when there is none."""
    if "://" not in location:
        path = Path(location)
        return path.read_text(encoding="utf-8") if path.is_file() else None
    import pyarrow.fs

    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(location)
        if filesystem.get_file_info(path).type != pyarrow.fs.FileType.File:
            return None
        with filesystem.open_input_stream(path) as stream:
            return stream.read().decode("utf-8")
    except (OSError, ValueError) as error:  # unreachable storage: refuse, never resume blind
        raise UsageError(f"--storage: cannot read {location} ({error})") from None


def _write_text(location: str, text: str) -> None:
    if "://" not in location:
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        return
    import pyarrow.fs

    filesystem, path = pyarrow.fs.FileSystem.from_uri(location)
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(text.encode("utf-8"))


def _parsed(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # a copy that no longer parses is compared as text


def spec_copies(results: Path, experiment: str, sweep: str) -> list[str]:
    """Where a sweep's spec copies live: beside its Parquet, and beside Tune's state.

    ``experiment`` is Tune's experiment folder, a local path or a URI.
    """
    return [str(Path(results) / SPECS / f"{sweep}.yaml"), _join(experiment, SPEC_COPY)]


def check_same_spec(source: str, sweep: str, copies: list[str]) -> None:
    """UsageError when ``sweep`` already ran with a spec that parses differently from ``source``.

    A change only in comments, layout or key order is the same spec and resumes.
    """
    wanted = _parsed(source)
    for location in copies:
        text = _read_text(location)
        if text is not None and _parsed(text) != wanted:
            raise UsageError(
                f"--name: sweep {sweep!r} already ran with another spec ({location}); "
                f"resume it with the same spec, start it over with --restart (its earlier "
                f"results are archived), or pick another --name"
            )


def record_spec(source: str, copies: list[str]) -> None:
    """Write ``source`` to every copy (after ``check_same_spec`` passed)."""
    for location in copies:
        _write_text(location, source)
