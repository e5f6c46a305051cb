"""Paths read from a results folder's tables stay inside that folder.

A results folder is data: users share it, CI keeps it, a cluster's storage holds it for
everyone. A path a table names (``predictions_png``) or a file found under the folder
(an outbox) is therefore only read when it resolves, symlinks followed, to a regular file
inside the folder; and a picture is only inlined when its bytes are a PNG. Otherwise
the reader skips it with :class:`OutsideResultsError`'s one-line reason; no byte of a file
outside the folder is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

#: The eight bytes every PNG file starts with (PNG specification, section 5.2).
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The largest picture a report inlines; a sample-predictions PNG is ~100 KB.
MAX_PNG_BYTES = 20 * 1024 * 1024


class OutsideResultsError(ValueError):
    """A path from a table (or under the folder) that must not be read; the message says
    why in a few words (``absolute path``, ``leaves the results folder``, ...)."""


class MissingFileError(OutsideResultsError):
    """The path stays inside the folder, but nothing is there (a file deleted or never
    copied): a gap in the data, not a hostile table."""


def contained_file(root: Path | str, name: str | os.PathLike[str]) -> Path:
    """The regular file ``name`` (relative to ``root``), resolved, when it lies inside ``root``.

    Args:
        root: the results folder.
        name: a relative path as a table stores it (POSIX separators), or a path found
            under ``root``.

    Raises:
        OutsideResultsError: ``name`` is absolute (POSIX, Windows drive or UNC), has a ``..``
            part, resolves (through a symlink) outside ``root``, does not exist, or is not
            a regular file.
    """
    text = os.fspath(name)
    if not text or "\x00" in text:
        raise OutsideResultsError("empty or malformed path")
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).anchor:
        raise OutsideResultsError("absolute path")
    if ".." in PurePosixPath(text.replace("\\", "/")).parts:
        raise OutsideResultsError("'..' leaves the results folder")
    base = Path(root).resolve()
    try:
        resolved = (base / text).resolve(strict=True)
    except FileNotFoundError:
        raise MissingFileError("file missing") from None
    except (OSError, RuntimeError) as error:  # a symlink loop, a permission
        raise OutsideResultsError(f"cannot resolve ({type(error).__name__})") from None
    if not resolved.is_relative_to(base):
        raise OutsideResultsError("resolves (through a symlink) outside the results folder")
    if not resolved.is_file():
        raise OutsideResultsError("not a regular file")
    return resolved


def read_contained(root: Path | str, name: str | os.PathLike[str], *,
                   max_bytes: int | None = None) -> bytes:
    """The bytes of :func:`contained_file` ``(root, name)``.

    The file is opened without following a last symlink and must be the very file that
    was checked (same device and inode), so a link swapped in between is not followed.

    Raises:
        OutsideResultsError: as :func:`contained_file`, or the file is larger than
            ``max_bytes``, or it changed between the check and the read.
    """
    path = contained_file(root, name)
    checked = path.stat()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        raise OutsideResultsError(f"cannot open ({type(error).__name__})") from None
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if (not stat.S_ISREG(opened.st_mode)
                or (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino)):
            raise OutsideResultsError("file changed while being checked")
        if max_bytes is not None and opened.st_size > max_bytes:
            raise OutsideResultsError(f"larger than {max_bytes} bytes")
        return handle.read() if max_bytes is None else handle.read(max_bytes + 1)


def read_png(root: Path | str, name: str | os.PathLike[str]) -> bytes:
    """The PNG file ``name`` under ``root`` (:func:`read_contained`), checked to be a PNG.

    Raises:
        OutsideResultsError: as :func:`read_contained`, or the bytes do not start with the PNG
            signature (a ``.png`` name on anything else is not inlined).
    """
    data = read_contained(root, name, max_bytes=MAX_PNG_BYTES)
    if not data.startswith(PNG_SIGNATURE):
        raise OutsideResultsError("not a PNG file (no PNG signature)")
    return data
