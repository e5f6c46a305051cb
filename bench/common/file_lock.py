"""An advisory lock on a file beside the work it guards, for processes of one machine."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, wait: bool = True) -> Iterator[bool | None]:
    """Hold an exclusive ``flock`` on ``path`` (made, with its folder, when missing) within.

    Yields True when held; False when another process holds it (``wait=False`` only);
    None where the folder refuses a file or a lock (nothing is held: the callers then do
    their work side by side, as they would without the lock). The kernel drops the lock
    when the file is closed, at the block's end or when the holder dies.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115  (held to the block's end)
    except OSError:
        yield None
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        except OSError:
            yield None
            return
        yield True
