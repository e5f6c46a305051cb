"""``zoobench``: the command line, built from the subcommand registry.

Exit status: 0 done; 2 bad input (``UsageError``: one line on stderr, no traceback);
1 when trials failed (``TrialsFailedError``: the others are recorded).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Sequence

from bench.common.errors import TrialsFailedError, UsageError
from bench.common.tensorflow_import import import_tensorflow


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as ``UsageError``: one line, exit 2, like the rest."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The ``zoobench`` parser: one subparser per registered command."""
    from bench.commands import COMMANDS

    parser = _Parser(
        prog="zoobench",
        description="Benchmark Keras segmentation models x losses x hyperparameters as Ray "
                    "Tune trials, tracked in MLflow, ranked in Parquet leaderboards.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_Parser)
    for entry in COMMANDS:
        command_parser = sub.add_parser(entry.name, help=entry.summary,
                                        description=entry.summary)
        entry.obj.add_arguments(command_parser)
        command_parser.set_defaults(_run=entry.obj.run)
    return parser


# Commands that import TensorFlow in this process (the schema lists zoo's registries).
# ``sweep`` checks its spec in a child process (bench.spec.check_process), which imports it
# quietly itself; the listings read zoo/catalog.json, and import it only to list plugins.
TENSORFLOW_COMMANDS = ("schema",)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``zoobench`` with ``argv`` (default: ``sys.argv[1:]``); the exit status.

    Without ``--verbose``, TensorFlow's native start-up lines are kept off the console
    (``bench.common.tensorflow_import``), and its C++ log level is 2 here and in Ray's workers
    (``bench.run.sweep`` passes the variable on).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    # Before anything imports TensorFlow: its start-up chatter would bury a one-line error.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    command = next((a for a in argv if not a.startswith("-")), None)
    asks_help = {"-h", "--help", "--print-spec"} & set(argv)
    if not verbose and command in TENSORFLOW_COMMANDS and not asks_help:
        # A failed import is the command's to report, where it needs TensorFlow.
        with contextlib.suppress(ImportError):
            import_tensorflow(quiet=True)
    try:
        args = build_parser().parse_args(argv)
        return int(args._run(args))
    except UsageError as error:
        print(f"zoobench: error: {error}", file=sys.stderr)
        return 2
    except TrialsFailedError as error:
        print(f"zoobench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zoobench: interrupted", file=sys.stderr)
        return 130


def command_line() -> int:
    """The ``zoobench`` executable (and ``python -m bench``): ``main()``'s exit status.

    Then the process's objects are moved out of the garbage collector's reach
    (``gc.freeze``): the interpreter's last collections at exit walked every object MLflow,
    SQLAlchemy and pandas made, 0.6-0.9 s of a sweep's end on 2 cores (a command that loads
    less, such as ``leaderboard``, gains less).
    Nothing is left unwritten by it: zoobench closes its files as it goes, threads are
    joined and exit handlers (logging's, MLflow's, Ray's) run as before. Not in ``main``,
    which tests and notebooks call in a process that goes on.
    """
    code = main()
    gc.freeze()
    return code
