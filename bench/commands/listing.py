"""``zoobench models | losses | datasets``: what the zoo offers, one line each.

The built-in entries come from ``zoo/catalog.json`` (``bench.common.zoo_catalog``): no
Keras, no TensorFlow, an answer in about a second. Plugins are listed from the live
registries, which importing their modules fills: installed ``zoobench.plugins`` entry
points, and modules named with ``--plugin``. On a terminal (or with ``COLUMNS`` set) a
table is wrapped to its width; piped, each entry stays on one line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from bench.commands.base import command
from bench.commands.leaderboard import FORMATS, render
from bench.common.zoo_catalog import Catalog, live_catalog, zoo_catalog

if TYPE_CHECKING:
    import pandas as pd

# Columns whose text is wrapped to fit the terminal (the others keep their width).
WRAPPED = ("options", "params", "summary")


def _options(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) or "-"


def models_rows(catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """One row per model: name, kind, task, size constraint, options (name -> default),
    summary. ``catalog``: default the built-in one (``zoo_catalog``)."""
    catalog = catalog or zoo_catalog()
    return [{"name": name, "kind": m["kind"], "task": m["task"],
             "size": f"multiple of {m['divisor']}, at least {m['min_size']}",
             "options": m["options"], "summary": m["summary"]}
            for name, m in catalog["models"].items()]


def losses_rows(catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """One row per loss: name, parameters (name -> default), summary."""
    catalog = catalog or zoo_catalog()
    return [{"name": name, "params": loss["params"], "summary": loss["summary"]}
            for name, loss in catalog["losses"].items()]


def datasets_rows(catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """One row per dataset: name, kind, options (name -> default), summary."""
    catalog = catalog or zoo_catalog()
    return [{"name": name, "kind": d["kind"], "options": d["options"], "summary": d["summary"]}
            for name, d in catalog["datasets"].items()]


def _as_text(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Rows with option maps as ``k=v, k=v`` (``-`` when empty)."""
    return [{k: _options(v) if isinstance(v, dict) else str(v) for k, v in row.items()}
            for row in rows]


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(_as_text(rows))


def models_table() -> pd.DataFrame:
    """``models_rows`` as a DataFrame, options as text."""
    return _frame(models_rows())


def losses_table() -> pd.DataFrame:
    """``losses_rows`` as a DataFrame, parameters as text."""
    return _frame(losses_rows())


def datasets_table() -> pd.DataFrame:
    """``datasets_rows`` as a DataFrame, options as text."""
    return _frame(datasets_rows())


def wrapped_table(rows: list[dict[str, str]], width: int) -> str:
    """``rows`` (text cells) as an aligned table no wider than ``width`` where it can be.

    A table that fits stays one line per row. Otherwise every column but the first is
    wrapped at spaces (``textwrap``), each keeping at least its longest word, the room left
    shared in proportion to what each column lacks. When even that does not fit, each row
    is its short columns on one line (the first ``WRAPPED`` one and those after it on lines
    of their own below, indented and wrapped).
    """
    if not rows:
        return ""
    header = list(rows[0])
    gaps = 2 * (len(header) - 1)
    natural = {c: max(len(c), *(len(r[c]) for r in rows)) for c in header}
    if sum(natural.values()) + gaps <= width:
        return _table(rows, header, natural)
    least = {c: natural[c] if i == 0 else max(len(c), *(len(w) for r in rows
                                                      for w in r[c].split()))
             for i, c in enumerate(header)}
    room = width - gaps - sum(least.values())
    if room < 0:
        return _stacked(rows, header, width)
    lacking = {c: natural[c] - least[c] for c in header}
    total = sum(lacking.values()) or 1
    widths = {c: least[c] + room * lacking[c] // total for c in header}
    return _table(rows, header, widths)


def _table(rows: list[dict[str, str]], header: list[str], widths: dict[str, int]) -> str:
    """Rows aligned in columns of ``widths``, cells wrapped at spaces to their column."""

    def lines(cells: dict[str, list[str]]) -> list[str]:
        height = max(len(v) for v in cells.values())
        return ["  ".join((cells[c][i] if i < len(cells[c]) else "").ljust(widths[c])
                          for c in header).rstrip() for i in range(height)]

    out = ["  ".join(c.ljust(widths[c]) for c in header).rstrip(),
           "  ".join("-" * widths[c] for c in header)]
    for row in rows:
        out += lines({c: textwrap.wrap(row[c], widths[c], break_long_words=False,
                                       break_on_hyphens=False) or [""] for c in header})
    return "\n".join(out) + "\n"


def _stacked(rows: list[dict[str, str]], header: list[str], width: int) -> str:
    """Each row's columns before the first ``WRAPPED`` one aligned on its line (as many as
    fit, the first always), the rest below it, one indented and wrapped paragraph each
    (``summary`` without its name)."""
    cut = max(1, next((i for i, c in enumerate(header) if c in WRAPPED), len(header)))
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in header}
    while cut > 1 and sum(widths[c] for c in header[:cut]) + 2 * (cut - 1) > width:
        cut -= 1  # the last short column goes below too
    short, long = header[:cut], header[cut:]
    out = ["  ".join(c.ljust(widths[c]) for c in short).rstrip(),
           "  ".join("-" * widths[c] for c in short)]
    for row in rows:
        out.append("  ".join(row[c].ljust(widths[c]) for c in short).rstrip())
        for c in long:
            text = row[c] if c == "summary" else f"{c}: {row[c]}"
            out += textwrap.wrap(text, width, initial_indent="    ", subsequent_indent="      ",
                                 break_on_hyphens=False)
    return "\n".join(out) + "\n"


def terminal_width() -> int | None:
    """The terminal's width (``COLUMNS`` first, as ``shutil.get_terminal_size``); None when
    stdout is no terminal and ``COLUMNS`` is unset: piped to ``grep``, one line per entry."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def render_rows(rows: list[dict[str, Any]], fmt: str, width: int | None = None) -> str:
    """``rows`` as text: a table wrapped to ``width`` (None: one line per row), CSV,
    Markdown, or JSON records (option and parameter maps as objects)."""
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "table":
        return wrapped_table(_as_text(rows), width or 10**6)
    return render(_frame(rows), fmt)


def _catalog_with_plugins(modules: Sequence[str]) -> Catalog:
    """The built-in catalog; with plugins (installed entry points, ``modules``), the live
    registries once they are imported (TensorFlow imported quietly first)."""
    from importlib.metadata import entry_points

    from bench.spec.plugins import ENTRY_POINT_GROUP, import_plugins

    if not modules and not entry_points(group=ENTRY_POINT_GROUP):
        return zoo_catalog()
    from bench.common.tensorflow_import import import_tensorflow

    import_tensorflow(quiet=True)
    import_plugins(modules, "--plugin")
    return live_catalog()


def _listing(name: str, rows: Callable[[Catalog | None], list[dict[str, Any]]],
             what: str) -> type:
    @command(name, help=f"list the {what}, one line each")
    class Listing:
        @staticmethod
        def add_arguments(parser: argparse.ArgumentParser) -> None:
            parser.add_argument("--format", choices=FORMATS, default="table",
                                help="output format (default: table, wrapped to the "
                                     "terminal's width)")
            parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                                help="also list what this plugin module registers "
                                     "(repeatable; installed entry-point plugins are "
                                     "always listed)")

        @staticmethod
        def run(args: argparse.Namespace) -> int:
            catalog = _catalog_with_plugins(args.plugin)
            sys.stdout.write(render_rows(rows(catalog), args.format, terminal_width()))
            return 0

    Listing.__name__ = Listing.__qualname__ = f"{name.capitalize()}Listing"
    Listing.__doc__ = f"``zoobench {name}``: the {what}."
    return Listing


Models = _listing("models", models_rows, "models of the zoo (kind, size constraint, options)")
Losses = _listing("losses", losses_rows, "losses a sweep can use, with their parameters")
Datasets = _listing("datasets", datasets_rows, "datasets and their options")
