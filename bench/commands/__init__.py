"""CLI subcommands; importing this package registers them all (see ``base.command``)."""

from bench.commands import leaderboard, listing, report, sweep  # noqa: F401  (registration)
from bench.commands.base import COMMANDS, command

__all__ = ["COMMANDS", "command"]
