"""``zoobench models | losses | datasets``: what the zoo offers, one line each."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from bench.commands.base import command
from bench.commands.leaderboard import FORMATS, render

if TYPE_CHECKING:
    import pandas as pd


def _options(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items())


def models_table() -> pd.DataFrame:
    """One row per registered model: name, kind, task, size constraint, options, summary."""
    import pandas as pd

    import zoo

    rows = []
    for name in zoo.list_models():
        info = zoo.describe_model(name)
        rows.append({"name": name, "kind": info.kind, "task": info.task,
                     "size": f"multiple of {info.divisor}, at least {info.min_size}",
                     "options": _options(info.options), "summary": info.summary})
    return pd.DataFrame(rows)


def losses_table() -> pd.DataFrame:
    """One row per registered loss: name, parameters with their defaults, summary."""
    import pandas as pd

    import zoo

    rows = []
    for name in zoo.list_losses():
        info = zoo.describe_loss(name)
        rows.append({"name": name, "params": _options(info["params"]) or "-",
                     "summary": info["summary"]})
    return pd.DataFrame(rows)


def datasets_table() -> pd.DataFrame:
    """One row per registered dataset: name, kind, options with defaults, summary."""
    import pandas as pd

    import zoo

    rows = []
    for name in zoo.datasets.list_datasets():
        spec = zoo.datasets.describe_dataset(name)
        rows.append({"name": name, "kind": spec.kind, "options": _options(spec.options),
                     "summary": spec.summary})
    return pd.DataFrame(rows)


def _listing(name: str, table: Any, what: str) -> type:
    @command(name, help=f"list the {what}, one line each")
    class Listing:
        @staticmethod
        def add_arguments(parser: argparse.ArgumentParser) -> None:
            parser.add_argument("--format", choices=FORMATS, default="table",
                                help="output format (default: table)")

        @staticmethod
        def run(args: argparse.Namespace) -> int:
            from bench.spec.plugins import load_entry_points

            load_entry_points()  # installed plugins' models, losses and datasets are listed too
            sys.stdout.write(render(table(), args.format))
            return 0

    Listing.__name__ = Listing.__qualname__ = f"{name.capitalize()}Listing"
    Listing.__doc__ = f"``zoobench {name}``: the {what}."
    return Listing


Models = _listing("models", models_table, "models of the zoo (kind, size constraint, options)")
Losses = _listing("losses", losses_table, "losses a sweep can use")
Datasets = _listing("datasets", datasets_table, "datasets and their options")
