"""The subcommand registry the CLI is built from.

A command module registers each subcommand once::

    @command("leaderboard", help="rank the configurations of a sweep")
    class Leaderboard:
        @staticmethod
        def add_arguments(parser: argparse.ArgumentParser) -> None: ...
        @staticmethod
        def run(args: argparse.Namespace) -> int: ...   # exit status

``run`` raises ``bench.common.errors.UsageError`` for bad input (exit 2, one line).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol


class Command(Protocol):
    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...

    @staticmethod
    def run(args: argparse.Namespace) -> int: ...


@dataclass(frozen=True)
class CommandEntry:
    """A registered subcommand: its name, class and one-line help."""

    name: str
    obj: Command
    summary: str


class CommandRegistry:
    """Subcommand name -> class, in registration order.

    Not ``zoo.registry.Registry``: importing ``zoo`` imports TensorFlow (5-10 s), and
    ``zoobench --help``, ``leaderboard`` and ``report`` must start without it.
    """

    def __init__(self) -> None:
        self._entries: dict[str, CommandEntry] = {}

    def add(self, name: str, obj: Command, *, summary: str) -> None:
        """Register ``obj`` under ``name`` (once)."""
        if name in self._entries:
            raise ValueError(f"command {name!r} is already registered")
        self._entries[name] = CommandEntry(name, obj, summary)

    def get(self, name: str) -> Command:
        """The command class registered as ``name``."""
        if name not in self._entries:
            raise ValueError(f"unknown command {name!r}; choose one of: "
                             f"{', '.join(self._entries)}")
        return self._entries[name].obj

    def __iter__(self) -> Iterator[CommandEntry]:
        return iter(self._entries.values())


COMMANDS = CommandRegistry()


def command(name: str, *, help: str) -> Callable[[type], type]:  # noqa: A002  (argparse's word)
    """Class decorator registering a subcommand under ``name`` with its one-line help."""

    def decorator(cls: type) -> type:
        COMMANDS.add(name, cls, summary=help)
        return cls

    return decorator
