"""``zoobench sync-mlflow --sweep NAME``: send MLflow what it missed while it was away."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench.commands.base import command
from bench.common.errors import UsageError
from bench.tracking import outbox
from bench.tracking.outbox import CREDENTIALS


@command("sync-mlflow", help="send MLflow the runs and epochs a sweep could not log to it")
class SyncMlflow:
    """Send the outboxes a sweep saved under ``DIR/outbox/NAME`` (``bench.tracking.outbox``)."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--sweep", required=True, metavar="NAME", help="the sweep")
        parser.add_argument("--results", default="results", metavar="DIR",
                            help="results folder of the sweep (default: ./results)")
        parser.add_argument("--tracking-uri", metavar="URI",
                            help="send there (default: the URI the sweep logged to)")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        results = Path(args.results)
        if not results.is_dir():
            raise UsageError(f"--results: no results folder {str(results)!r}")
        if args.sweep in (".", "..") or any(c in args.sweep for c in "/\\\0"):
            raise UsageError(f"--sweep: {args.sweep!r} is not a sweep name (no path parts)")
        saved = outbox.read_all(results, args.sweep)
        if not saved:
            print(f"sync-mlflow: nothing to send for sweep {args.sweep!r} (no files in "
                  f"{outbox.folder(results, args.sweep)})")
            return 0
        outbox.bound_http_retries()
        boxes = {}
        for path, box in saved.items():
            if args.tracking_uri:
                box.uri = args.tracking_uri
            boxes[path.stem] = box
        _check_where_credentials_go(boxes, args.tracking_uri)
        runs, epochs = len(boxes), sum(box.steps() for box in boxes.values())
        left = outbox.deliver(boxes, results, args.sweep)
        if left.runs:
            uri = args.tracking_uri or next(iter(boxes.values())).uri
            raise UsageError(f"--tracking-uri: MLflow at {uri} did not take the data of "
                             f"{left.runs} runs ({left.error}); nothing was lost: run this "
                             f"again when it answers")
        print(f"sync-mlflow: sent {runs} runs ({epochs} epochs of metrics) of sweep "
              f"{args.sweep!r}", file=sys.stdout)
        return 0


def _check_where_credentials_go(boxes: dict[str, outbox.Outbox], given: str | None) -> None:
    """UsageError when MLflow credentials are set and the outbox files alone say which server
    gets them: the files are data (a shared results folder), and MLflow's client sends
    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/``TOKEN`` to whatever server it talks to."""
    if given is not None or not any(os.environ.get(name) for name in CREDENTIALS):
        return
    servers = sorted({box.uri for box in boxes.values()
                      if box.uri.startswith(("http://", "https://"))})
    if servers:
        raise UsageError(f"--tracking-uri: the outboxes name {', '.join(servers)}; with MLflow "
                         f"credentials set, say where they go: --tracking-uri URI")
