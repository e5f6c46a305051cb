"""``zoobench leaderboard``: rank the configurations of a sweep, or compare two sweeps."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench.commands.base import command
from bench.common.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

# pandas, SciPy (the statistics) and the leaderboard code are imported by the functions that
# use them: `zoobench --help` and the other commands' parsers start without them (~2 s).

FORMATS = ("table", "csv", "markdown", "json")
_NUMBER = re.compile(r"^[+-]?(\d[\d,]*)?\.?\d+")


def load_trials(
    results: str | Path, sweep: str | None, *, flag: str = "--sweep"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trials and history of ``results`` (one sweep when named), or a UsageError naming
    the folder or the sweep (as given by ``flag``) and the ones available."""
    from bench.results import leaderboard as lb
    root = Path(results)
    if not root.is_dir():
        raise UsageError(f"--results: no results folder {str(root)!r}")
    try:
        trials, history = lb.load_results(root)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    available = sorted(trials["sweep"].astype(str).unique()) if len(trials) else []
    if not available:
        raise UsageError(f"{root}: trials.parquet holds no trials")
    if sweep is not None:
        if sweep not in available:
            raise UsageError(
                f"{flag}: no sweep {sweep!r} in {root}; choose one of: {', '.join(available)}"
            )
        trials = trials[trials["sweep"].astype(str) == sweep].reset_index(drop=True)
        if len(history):
            history = history[history["sweep"].astype(str) == sweep].reset_index(drop=True)
    return trials, history


def board_for(trials: pd.DataFrame, metric: str | None, mode: str | None = None,
              history: pd.DataFrame | None = None) -> pd.DataFrame:
    """``lb.aggregate`` with an unknown metric turned into a UsageError listing the known.

    With ``history``, a ``--metric`` other than the sweep's ranks each trial by its own
    best epoch value of it."""
    from bench.results import leaderboard as lb
    if metric is not None and metric not in lb.metric_names(trials):
        raise UsageError(
            f"--metric: unknown metric {metric!r}; choose one of: "
            f"{', '.join(lb.metric_names(trials))}"
        )
    return lb.aggregate(trials, metric=metric, mode=mode, history=history)


def render(frame: pd.DataFrame, fmt: str) -> str:
    """``frame`` as text: an aligned table, CSV, GitHub Markdown or JSON records."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return json.dumps(records, indent=2, default=_json_default) + "\n"
    cells = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    header = [str(c) for c in frame.columns]
    if fmt == "markdown":
        lines = ["| " + " | ".join(_md(h) for h in header) + " |",
                 "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    # Columns of numbers are right-aligned, so digits line up.
    right = [all(_NUMBER.match(r[i]) or not r[i] for r in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(row, widths, right, strict=True)).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths),
                      *(line(row) for row in cells)]) + "\n"


def _explain(board: pd.DataFrame) -> None:
    """One line on stderr saying what the statistics columns mean (stdout stays the table)."""
    import pandas as pd

    if board.empty:
        return
    line = ("p vs best: paired test against rank 1 over shared seeds, Holm-corrected; "
            "tied: p >= 0.05; P(first): share of bootstrap resamples of seeds ranking it "
            "first; failed trials score the metric's worst value")
    if bool(board.get("ranked_within_loss", pd.Series([False])).any()):
        line += f"; {board['metric'].iloc[0]} is ranked within each loss function"
    print(line, file=sys.stderr)


def _cell(value: object) -> str:
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _json_default(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _other_side(args: argparse.Namespace, trials: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The sweep ``--compare`` names: another results folder, or another sweep here."""
    other = args.compare
    if Path(other).is_dir():
        other_trials, _ = load_trials(other, None)
        names = sorted(other_trials["sweep"].astype(str).unique())
        name = args.sweep if args.sweep in names else (names[0] if len(names) == 1 else None)
        if name is None:
            raise UsageError(
                f"--compare: {other} holds several sweeps and none is named {args.sweep!r}; "
                f"choose one with --sweep: {', '.join(names)}"
            )
        return f"{other}:{name}", other_trials[other_trials["sweep"].astype(str) == name]
    other_trials, _ = load_trials(args.results, other, flag="--compare")
    return other, other_trials


def _print_across(board: pd.DataFrame, fmt: str, notes: list[str] | None = None) -> int:
    """``--across``: the across-datasets table, and what it means on stderr.

    ``notes``: lines saying which sweeps were left out (one sweep per dataset)."""
    from bench.results import across
    from bench.results.leaderboard import configurations_as_models

    # Several configurations of a model x loss are compared as configurations.
    try:
        result = across.across(configurations_as_models(board))
    except ValueError as e:
        raise UsageError(str(e)) from None
    notes = list(notes or [])
    if fmt == "json":
        payload = {"table": json.loads(result.table.to_json(orient="records")),
                   "friedman": result.friedman._asdict(), "critical_difference": result.cd,
                   "cliques": result.cliques, "datasets_to_separate_top_two": result.needed,
                   "left_out": result.left_out, "sweeps_left_out": notes,
                   "kendall_tau": json.loads(result.kendall.to_json())}
        sys.stdout.write(json.dumps(payload, indent=2, default=_json_default) + "\n")
        return 0
    for line in notes:  # one block per dataset: which sweep stands for it
        print(f"across: {line}", file=sys.stderr)
    if fmt in ("table", "markdown"):
        for line in across.summary_lines(result):
            print(line, file=sys.stderr)
    table = result.table.round(3) if fmt != "csv" else result.table
    sys.stdout.write(render(table, fmt))
    return 0


def holm_across_rows(out: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """``lb.compare``'s rows with ``p_holm``: the paired tests' p-values Holm-adjusted over
    the rows that have one (each row is one test of the family), and ``distinct`` of those
    rows re-decided on ``p_holm < alpha``. Rows judged by CI overlap keep their verdict.

    Args:
        out: ``lb.compare`` output (``p`` NaN where no paired test ran).
    """
    from bench.results.stats import holm

    out = out.copy()
    out["p_holm"] = holm(out["p"].to_numpy(dtype=float))
    tested = out["p_holm"].notna()
    out["distinct"] = out["distinct"].astype(object)
    out.loc[tested, "distinct"] = [bool(p < alpha) for p in out.loc[tested, "p_holm"]]
    return out


@command("leaderboard", help="rank the configurations of a sweep (mean ± std over seeds)")
class Leaderboard:
    """Print the leaderboard of the sweeps in a results folder, or compare two sweeps."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--results", default="results", metavar="DIR",
                            help="results folder of the sweeps (default: ./results)")
        parser.add_argument("--sweep", metavar="NAME",
                            help="only this sweep (default: every sweep, each ranked apart)")
        parser.add_argument("--metric", metavar="M",
                            help="rank by this val_* or test_* column, as named: "
                                 "val_mean_iou ranks validation (default: the sweep's "
                                 "metric, on the test split when recorded); a val_* metric "
                                 "other than the sweep's takes each trial's best epoch")
        parser.add_argument("--mode", choices=("max", "min"),
                            help="whether larger is better for --metric (default: the "
                                 "sweep's mode for its metric; min for losses, else max)")
        parser.add_argument("--format", choices=FORMATS, default="table",
                            help="output format (default: table)")
        parser.add_argument("--across", action="store_true",
                            help="compare configurations across the datasets of the results: "
                                 "mean rank, Friedman's test, Nemenyi's critical difference, "
                                 "Kendall's tau between datasets")
        parser.add_argument("--compare", metavar="OTHER",
                            help="another sweep name, or another results folder: print both "
                                 "means, their difference, and a paired test over the seeds "
                                 "both ran (else whether their 95%% confidence intervals are "
                                 "apart)")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from bench.results import leaderboard as lb
        from bench.results.baselines import stored_baselines

        trials, history = load_trials(args.results, args.sweep)
        if args.across:
            if args.compare is not None:
                raise UsageError("--across: cannot be combined with --compare")
            from bench.results.across import one_sweep_per_dataset
            trials, notes = one_sweep_per_dataset(trials)
            return _print_across(board_for(trials, args.metric, args.mode, history),
                                 args.format, notes)
        if args.compare is None:
            board = board_for(trials, args.metric, args.mode, history)
            board = stored_baselines(args.results, board)  # next frames: persistence, ...
            table = board if args.format in ("csv", "json") else lb.summary(board)
            if args.format in ("table", "markdown"):
                _explain(board)
            sys.stdout.write(render(table, args.format))
            return 0
        sweeps = sorted(trials["sweep"].astype(str).unique())
        if not Path(args.compare).is_dir():
            sweeps = [s for s in sweeps if s != args.compare] or sweeps
        if len(sweeps) > 1:
            raise UsageError(
                f"--compare: {args.results} holds several sweeps; choose one with --sweep: "
                f"{', '.join(sweeps)}"
            )
        trials = trials[trials["sweep"].astype(str) == sweeps[0]]
        left = board_for(trials, args.metric, args.mode, history)
        metric, mode = str(left["metric"].iloc[0]), str(left["mode"].iloc[0])
        right_name, right_trials = _other_side(args, trials)
        right = board_for(right_trials, metric, mode)
        out = holm_across_rows(lb.compare(left, right, metric))
        if args.format in ("table", "markdown"):
            print(f"{metric} ({mode}): a = {sweeps[0]}, b = {right_name}; distinct = a paired "
                  "test over the shared seeds gives p < 0.05 after Holm's correction over the "
                  "rows tested (p_holm; Wilcoxon from 6 seeds, else paired t), or without "
                  "shared seeds the 95% confidence intervals do not overlap", file=sys.stderr)
            out = out[["dataset", "model", "loss", "mean_a", "std_a", "count_a", "mean_b",
                       "std_b", "count_b", "diff", "better", "test", "p", "p_holm",
                       "distinct"]]
            out = out.assign(distinct=out["distinct"].map(
                {True: "yes", False: "no"}).fillna("n/a (<2 trials)"))
        sys.stdout.write(render(out, args.format))
        return 0
