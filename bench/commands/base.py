"""The subcommand registry the CLI is built from.

A command module registers each subcommand once::

    @command("leaderboard", help="rank the configurations of a sweep")
    class Leaderboard:
        @staticmethod
        def add_arguments(parser: argparse.ArgumentParser) -> None: ...
        @staticmethod
        def run(args: argparse.Namespace) -> int: ...   # exit status

``run`` raises ``bench.errors.UsageError`` for bad input (exit 2, one line).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol

from zoo.registry import Registry


class Command(Protocol):
    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...

    @staticmethod
    def run(args: argparse.Namespace) -> int: ...


COMMANDS: Registry[Command] = Registry("command")


def command(name: str, *, help: str) -> Callable[[type], type]:  # noqa: A002  (argparse's word)
    """Class decorator registering a subcommand under ``name`` with its one-line help."""

    def decorator(cls: type) -> type:
        COMMANDS.add(name, cls, summary=help)
        return cls

    return decorator
