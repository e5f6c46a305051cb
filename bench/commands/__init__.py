"""CLI subcommands; importing this package registers them all (see ``base.command``)."""

from bench.commands import (  # noqa: F401  (registration)
    leaderboard,
    listing,
    report,
    schema,
    sweep,
    sync_mlflow,
)
from bench.commands.base import COMMANDS, command

__all__ = ["COMMANDS", "command"]
