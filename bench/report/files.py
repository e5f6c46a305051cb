"""Files a report section reads because a table names them, kept inside the results folder.

Sections never join a table's path to the results folder themselves: they ask
:func:`table_png`, which reads only a PNG inside the folder (``bench.common.paths``) and
otherwise prints one warning line naming the row and returns why it skipped it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bench.common.paths import MissingFileError, OutsideResultsError, read_png


@dataclass(frozen=True)
class TableFile:
    """What :func:`table_png` found: the file's ``data``, or ``None`` and the ``skipped``
    reason (a few words, for the report's note)."""

    data: bytes | None
    skipped: str = ""


def warn(message: str) -> None:
    """One warning line on stderr (where ``zoobench report`` prints its progress)."""
    print(f"report: warning: {message}", file=sys.stderr, flush=True)


def table_png(results_dir: Path, name: object, *, column: str, row: str) -> TableFile:
    """The PNG a table's ``column`` names (relative to ``results_dir``) for ``row``.

    Args:
        results_dir: the results folder the table came from.
        name: the cell's value: a relative path, or empty (None, NaN, ``""``: nothing saved).
        column: the column's name (``predictions_png``), for the warning.
        row: which row, in words (``trial a97bb_00019``), for the warning.

    Returns:
        The bytes, or why not: an empty cell is "nothing saved" (no warning); a path outside
        the folder, a missing file or bytes that are not a PNG print one warning line.
    """
    if not isinstance(name, str) or not name:
        return TableFile(None, f"the trial saved no picture ({column} empty)")
    try:
        return TableFile(read_png(results_dir, name))
    except MissingFileError:
        warn(f"{column} of {row}: picture file missing: {name!r}")
        return TableFile(None, f"picture file missing: {name}")
    except OutsideResultsError as error:
        warn(f"{column} of {row} skipped: {error}: {name!r}")
        return TableFile(None, f"{column} skipped: {error}")
