"""An environment variable set for the length of a block, then put back as it was."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def variable_set(name: str, value: str, *, override: bool = True) -> Iterator[str]:
    """Within the block, the environment variable ``name`` is ``value``; yields the value in
    force there.

    ``override=False`` sets it only where it is unset, so a user's own setting wins (and is
    what the block yields). Afterwards the variable is as it was before the block, unset
    or its old value, whatever the block raised. For settings that a library reads while
    the block runs (Ray Tune reads several in ``fit``) and that must not leak into the
    caller's later work, such as a notebook's own Tune runs.
    """
    saved = os.environ.get(name)
    if override or saved is None:
        os.environ[name] = value
    try:
        yield os.environ[name]
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved
