"""``python -m bench`` is the ``zoobench`` command."""

from bench.cli import command_line

raise SystemExit(command_line())
