"""``zoobench sweep [SPEC.yaml]``: run (or resume) a sweep."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bench.commands.base import command
from bench.common.errors import TrialsFailedError

if TYPE_CHECKING:
    from bench.run.sweep import SweepOutcome
    from bench.spec.model import SweepSpec


@command("sweep", help="run a sweep of models x losses x hyperparameters (resumes by name)")
class Sweep:
    """Validate the spec, run its trials on Ray Tune, write Parquet and the leaderboard."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("spec", nargs="?", metavar="SPEC.yaml",
                            help="sweep spec (default: the embedded small sweep; "
                                 "see --print-spec)")
        parser.add_argument("--results", default="results", metavar="DIR",
                            help="results folder (default: ./results)")
        parser.add_argument("--tracking-uri", metavar="URI",
                            help="MLflow tracking URI (default: sqlite:///DIR/mlflow.db)")
        parser.add_argument("--address", metavar="ADDR",
                            help="Ray cluster to join: auto, ray://HOST:10001 or HOST:6379 "
                                 "(default: start a local Ray)")
        parser.add_argument("--name", metavar="NAME",
                            help="sweep name (default: the spec's name); the same name "
                                 "again resumes the sweep")
        parser.add_argument("--storage", metavar="URI",
                            help="Tune's storage, shared by every node on a cluster "
                                 "(NFS path, s3://, gs://; default: DIR/ray)")
        parser.add_argument("--verbose", action="store_true",
                            help="show Ray Tune's status table and log lines too (default: "
                                 "they go to DIR/logs/NAME.log)")
        parser.add_argument("--restart", action="store_true",
                            help="start the sweep over instead of resuming it: says what it "
                                 "sets aside, then archives its tables, predictions and "
                                 "Tune state under DIR/archive/ and moves its MLflow runs "
                                 "to MLflow's trash (restorable)")
        parser.add_argument("--print-spec", action="store_true",
                            help="print the embedded default spec and exit")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from bench.spec.model import DEFAULT_SPEC, load_spec

        if args.print_spec:
            sys.stdout.write(DEFAULT_SPEC)
            return 0
        from bench.spec import check_process

        # The spec is checked (with TensorFlow) in a child process, started before this
        # one's own imports, while Ray starts here (bench.spec.check_process).
        pending = check_process.PendingSpec(args.spec, args.name, args.verbose) \
            if check_process.worth_a_child() else None
        from bench.run.data_cache import prebuild
        from bench.run.sweep import (
            SweepOptions,
            run_sweep,
            start_ray_early,
            stop_local_ray,
        )

        options = SweepOptions(
            results=Path(args.results), tracking_uri=args.tracking_uri,
            address=args.address, storage=args.storage, verbose=args.verbose,
            restart=args.restart,
        )
        if pending is None:
            spec = load_spec(args.spec, args.name)
            outcome = run_sweep(spec, options)
        else:
            with pending:
                try:
                    start_ray_early(options)
                finally:
                    spec = pending.result()  # a refused spec is said first, even then
                # The child builds the first datasets into the sweep's cache, then ends.
                outcome = run_sweep(spec, options, prebuild=partial(pending.then, prebuild))
            try:
                return _report(args, spec, outcome)
            finally:
                stop_local_ray(options)  # the Ray start_ray_early started, after the summary
        return _report(args, spec, outcome)


def _report(args: argparse.Namespace, spec: SweepSpec, outcome: SweepOutcome) -> int:
    """The sweep's summary, where its results are, and its exit status (130: interrupted;
    ``TrialsFailedError``: trials failed)."""
    from bench.run.sweep import summary_lines
    from bench.tracking.ui_links import ui_lines

    print("\n".join(summary_lines(outcome)))
    print(f"results: {Path(args.results).resolve()} (trials.parquet, history.parquet, "
          f"leaderboard.parquet); MLflow: {outcome.tracking.uri}")
    print("\n".join(ui_lines(outcome.tracking)))
    missing = outcome.mlflow_missing
    if missing.runs:
        uri = outcome.tracking.uri
        print(f"zoobench: warning: MLflow at {uri} did not answer ({missing.error}); it "
              f"lacks data of {missing.runs} runs ({missing.epochs} epochs of metrics), "
              f"kept in {Path(args.results).resolve() / 'outbox' / spec.name}; send "
              f"them with: zoobench sync-mlflow --sweep {spec.name} --results "
              f"{args.results} --tracking-uri {uri}", file=sys.stderr)
    if outcome.unfinished:
        print(f"zoobench: interrupted with {outcome.unfinished} trials unfinished; run the "
              f"same command again to resume", file=sys.stderr)
        return 130
    if outcome.failed:
        raise TrialsFailedError(f"{outcome.failed} of {len(outcome.trials)} trials failed "
                                f"(see status and error in trials.parquet)")
    return 0
