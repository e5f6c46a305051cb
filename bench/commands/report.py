"""``zoobench report``: one self-contained HTML page about a sweep."""

from __future__ import annotations

import argparse
import sys

from bench.commands.base import command
from bench.commands.leaderboard import load_trials
from bench.common.errors import UsageError


@command("report", help="write one self-contained HTML report of a sweep")
class Report:
    """Leaderboard, heat map, cost, learning curves, per-class IoU, predictions, failures."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--results", default="results", metavar="DIR",
                            help="results folder of the sweeps (default: ./results)")
        parser.add_argument("--sweep", metavar="NAME",
                            help="the sweep to report on (default: the one that ended last)")
        parser.add_argument("--out", metavar="FILE.html",
                            help="where to write (default: DIR/report-NAME.html)")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from bench.report import build_report  # matplotlib is only needed here

        if args.out is not None and not args.out.lower().endswith((".html", ".htm")):
            raise UsageError(f"--out: {args.out!r} must end in .html")
        trials, _ = load_trials(args.results, args.sweep)  # UsageErrors for folder / sweep
        names = sorted(trials["sweep"].astype(str).unique())
        if args.sweep is None and len(names) > 1:
            from bench.results.leaderboard import latest_sweep

            print(f"report: several sweeps ({', '.join(names)}); reporting on the latest, "
                  f"{latest_sweep(trials)!r} (choose with --sweep)", file=sys.stderr)
        path = build_report(args.results, sweep=args.sweep, out=args.out)
        print(path)
        return 0
