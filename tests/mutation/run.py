"""Mutation testing of the numbers users read: mutmut 3 on the statistics, the leaderboard's
aggregation and its ``--compare`` verdict, the per-case metrics and the protocol's selection.

Five groups, each a module set and the fast tests that check it (no Ray, no Chromium):

- ``stats``: ``bench/results/stats.py``, ``bench/results/across.py`` (1,122 mutants, ~3 min)
- ``leaderboard``: ``bench/results/leaderboard.py``, its aggregation and ``latest_sweep``
  (reading folders, ``compare`` and the display strings are left unmutated; 1,093 mutants,
  ~5 min)
- ``case_metrics``: ``zoo/case_metrics.py`` (TensorFlow is imported once, by ``zoo``, in
  mutmut's main process; each mutant's test run is forked from it; 439 mutants, ~3 min)
- ``selection``: ``bench/spec/stages.py`` (each cell's tune configuration chosen by its
  mean validation score, and stage 2's grid; 233 mutants, ~1 min)
- ``compare``: ``bench/results/leaderboard.py``'s ``compare`` alone (211 mutants, ~1 min;
  it shares the file with ``leaderboard``, so name the group with ``--show``)

Times: ``--max-children 2`` on 2 cores shared with other work (load 4-5).

Each group runs in a scratch folder of its own (``$ZOOBENCH_MUTATION_DIR/<group>``, default
``/tmp/zoobench-mutation/<group>``), so mutmut's ``mutants/`` copy and cache never land in
the checkout: the script copies what the tests need there, writes mutmut's configuration,
runs ``mutmut run`` with only that group's tests, then prints the group's score and every
surviving mutant.

    pip install -e ".[test,mutation]"
    python tests/mutation/run.py                         # every group, one after another
    python tests/mutation/run.py --groups leaderboard    # one group
    python tests/mutation/run.py --groups compare --show NAME   # one mutant's diff
    python tests/mutation/run.py --groups leaderboard --check tests/test_new.py
                                 # which survivors of the last run the new tests kill
    python tests/mutation/run.py --groups leaderboard --resume   # finish a stopped run

A test whose name contains ``report`` is left out of the ``stats`` and ``leaderboard`` runs
(their ``-k``): name new tests accordingly.

Exit status 0 when every group run kills at least ``--min-score`` percent of its mutants,
else 1. docs/mutation.md gives each group's time and score and lists the survivors of the
last recorded run, each classified.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT = Path(os.environ.get("ZOOBENCH_MUTATION_DIR", "/tmp/zoobench-mutation"))


@dataclass(frozen=True)
class Group:
    """Modules mutated together (files under REPO) and the fast tests that check them."""

    modules: tuple[str, ...]
    tests: tuple[str, ...]
    #: pytest ``-k``: the tests of those files left out (slow, or checking other code).
    deselect: str = ""
    #: Test files copied because the tests import them, without being run.
    support: tuple[str, ...] = ()
    #: Per module, the ranges left unmutated: (first line, line after the range; None for
    #: the end of the file), each line a unique substring of the source. The scratch copy
    #: gets mutmut's ``# pragma: no mutate`` comments there; the checkout is untouched.
    skip: tuple[tuple[str, str, str | None], ...] = ()


GROUPS: dict[str, Group] = {
    # The report's Chromium render and TensorFlow's import (per-case metrics) take seconds
    # per mutant and check neither module more closely.
    "stats": Group(
        modules=("bench/results/stats.py", "bench/results/across.py"),
        tests=("tests/test_stats.py", "tests/test_across.py", "tests/test_properties.py"),
        deselect="not report and not per_case",
        support=("tests/test_leaderboard.py",)),
    # The aggregation (trials -> ranked rows with their statistics) and latest_sweep; reading
    # Parquet folders, compare and the display strings of summary are not in the group.
    "leaderboard": Group(
        modules=("bench/results/leaderboard.py",),
        tests=("tests/test_leaderboard.py", "tests/test_leaderboard_rules.py",
               "tests/test_leaderboard_mutants.py", "tests/test_stats.py"),
        deselect="not report",
        skip=(("bench/results/leaderboard.py", "\ndef _read_table(", "\ndef latest_sweep("),
              ("bench/results/leaderboard.py", "\ndef _fmt(", None))),
    "case_metrics": Group(
        modules=("zoo/case_metrics.py",),
        tests=("tests/test_case_metrics.py", "tests/test_case_metrics_properties.py",
               "tests/test_case_metrics_reference.py", "tests/test_case_metrics_mutants.py",
               "tests/test_properties.py::"
               "test_per_case_dice_and_iou_are_symmetric_in_unit_range_and_related")),
    # The --compare verdict (compare and the seed dict it reads), the rest of the module
    # left as it is; checked by the compare tests and the CLI's --compare on tables.
    "compare": Group(
        modules=("bench/results/leaderboard.py",),
        tests=("tests/test_compare.py", "tests/test_compare_mutants.py",
               "tests/test_leaderboard.py"),
        deselect="compare",
        skip=(("bench/results/leaderboard.py", "\nfrom __future__ import annotations\n",
               "\ndef compare("),
              ("bench/results/leaderboard.py", "\ndef latest_sweep(", None))),
    # test_protocol's sweeps start Ray or the CLI: left out, the selection is checked
    # directly.
    "selection": Group(
        modules=("bench/spec/stages.py",),
        tests=("tests/test_protocol.py", "tests/test_selection_rules.py"),
        deselect="not protocol_sweep and not bad_protocols and not top_level_seeds"),
}


def _config(group: Group) -> str:
    quoted = ", ".join(f'"{m}"' for m in group.modules)
    tests = ", ".join(f'"{t}"' for t in group.tests)
    select = f', "-k", "{group.deselect}"' if group.deselect else ""
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["bench", "zoo"]\n'
        f"only_mutate = [{quoted}]\n"
        f"pytest_add_cli_args_test_selection = [{tests}]\n"
        f'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q"{select}]\n'
        "use_git_change_detection = false\n"
    )


def scratch(name: str) -> Path:
    """The group's scratch folder."""
    return ROOT / name


def prepare(name: str) -> None:
    """A fresh scratch copy: bench, zoo, the group's tests and data, pyproject + config."""
    group, folder = GROUPS[name], scratch(name)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for source in ("bench", "zoo"):
        shutil.copytree(REPO / source, folder / source, ignore=ignore)
    for module, start, end in group.skip:
        _skip_range(folder / module, start, end)
    (folder / "tests").mkdir()
    for path in ("tests/__init__.py", "tests/conftest.py", *group.tests, *group.support):
        path = path.split("::")[0]
        shutil.copy2(REPO / path, folder / path)
    # Recorded reference values some tests compare with (MONAI's HD95).
    shutil.copytree(REPO / "tests" / "reference", folder / "tests" / "reference",
                    ignore=ignore)
    # mutmut fills mutants/ later; it must exist before Python starts, or the import
    # system caches it as absent and `tests` (on PYTHONPATH) is never found.
    (folder / "mutants").mkdir()
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    (folder / "pyproject.toml").write_text(text + _config(group), encoding="utf-8")


def _skip_range(path: Path, start: str, end: str | None) -> None:
    """Mark the source between ``start`` and ``end`` (or the end of the file) unmutated."""
    text = path.read_text(encoding="utf-8")
    for marker in (start, end):
        if marker is not None and text.count(marker) != 1:
            raise SystemExit(f"mutation: {marker!r} is not once in {path}; update GROUPS")
    # "start"/"end" bound a range; "block" (module level) runs to the end of the file.
    text = text.replace(start, "\n# pragma: no mutate " + ("start" if end else "block")
                        + start)
    if end is not None:
        text = text.replace(end, "\n# pragma: no mutate end" + end)
    path.write_text(text, encoding="utf-8")


def _mutmut(name: str, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    # mutmut runs the tests against its mutants/ copy; that copy must come before the
    # installed (editable) checkout on the path.
    folder = scratch(name)
    env = dict(os.environ, PYTHONPATH=str(folder / "mutants"), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=folder, env=env,
                          text=True, capture_output=capture, check=False)


def results(name: str) -> dict[str, str]:
    """Mutant name -> status ("killed", "survived", "timeout", ...), from ``mutmut results``."""
    done = _mutmut(name, "results", "--all", "true", capture=True)
    if done.returncode != 0:  # older 3.x: no --all
        done = _mutmut(name, "results", capture=True)
    status = {}
    for line in done.stdout.splitlines():
        match = re.match(r"\s*([\w.]+__mutmut_\d+):\s*(\w[\w ]*)", line)
        if match:
            status[match.group(1)] = match.group(2).strip()
    return status


def score(status: dict[str, str]) -> tuple[int, int]:
    """``(caught, total)``: mutants the tests noticed, of those that were run."""
    killed = sum(s == "killed" for s in status.values())
    # A mutant that makes the tests time out or crash is caught too: it cannot pass.
    caught = killed + sum(s in ("timeout", "segfault") for s in status.values())
    total = sum(s not in ("skipped", "not checked") for s in status.values())
    return caught, total


def refresh_tests(name: str) -> None:
    """Copy the group's test files from the checkout into its scratch copy again."""
    group, folder = GROUPS[name], scratch(name)
    for path in (*group.tests, *group.support):
        path = path.split("::")[0]
        for root in (folder, folder / "mutants"):
            shutil.copy2(REPO / path, root / path)


def run_group(name: str, max_children: int, resume: bool = False) -> tuple[int, int] | None:
    """Run one group; print its score and survivors. None when mutmut itself failed.

    ``resume``: keep the scratch copy and the results so far (mutmut runs only the mutants
    without a result), with the checkout's current tests; new tests are added to mutmut's
    map of which tests cover which function.
    """
    group = GROUPS[name]
    started = time.monotonic()
    if resume and (scratch(name) / "mutants").is_dir():
        refresh_tests(name)
    else:
        prepare(name)
    run = _mutmut(name, "run", "--max-children", str(max_children))
    if run.returncode not in (0, 1):
        print(f"mutation [{name}]: mutmut run failed with status {run.returncode}",
              file=sys.stderr)
        return None
    status = results(name)
    if not status:
        print(f"mutation [{name}]: mutmut reported no mutants", file=sys.stderr)
        return None
    caught, total = score(status)
    minutes = (time.monotonic() - started) / 60
    print(f"\nmutation [{name}]: {caught}/{total} = {100.0 * caught / max(total, 1):.1f}% "
          f"of mutants killed in {minutes:.1f} min ({', '.join(group.modules)}; tests: "
          f"{', '.join(group.tests)}" + (f", -k {group.deselect!r})" if group.deselect else ")"))
    for mutant in sorted(m for m, s in status.items()
                         if s in ("survived", "suspicious", "no tests")):
        print(f"  survived: {mutant} ({status[mutant]})")
    return caught, total


_CHECK = """
import os, sys, pytest
args, names = sys.argv[1:sys.argv.index("--")], sys.argv[sys.argv.index("--") + 1:]
os.environ["MUTANT_UNDER_TEST"] = ""
if pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args]) != 0:
    sys.exit("mutation: the tests fail without a mutant")
for name in names:
    os.environ["MUTANT_UNDER_TEST"] = name
    code = pytest.main(["-x", "-q", "--no-header", "-p", "no:cacheprovider",
                        "-p", "no:randomly", *args])
    print(f"CHECK {name} {'killed' if code != 0 else 'survived'}", flush=True)
"""


def check(name: str, tests: list[str]) -> int:
    """Run the last run's survivors of group ``name`` against the checkout's current tests.

    Copies the group's test files from the checkout into the scratch copy and runs each
    surviving mutant (``MUTANT_UNDER_TEST``, which mutmut's trampolines read at every call)
    against ``tests`` (default: the group's), in one process: a test written for a
    survivor is seen to fail on it without rerunning every mutant.
    """
    group, folder = GROUPS[name], scratch(name)
    survivors = sorted(m for m, s in results(name).items()
                       if s in ("survived", "suspicious", "no tests"))
    refresh_tests(name)
    args = [*(tests or group.tests), *(["-k", group.deselect] if group.deselect else [])]
    env = dict(os.environ, PYTHONPATH=str(folder / "mutants"), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", _CHECK, *args, "--", *survivors],
                          cwd=folder / "mutants", env=env, text=True, capture_output=True,
                          check=False)
    verdicts = re.findall(r"^CHECK (\S+) (\w+)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or len(verdicts) != len(survivors):
        print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
        return 2
    killed = [m for m, v in verdicts if v == "killed"]
    print(f"mutation [{name}]: {len(killed)} of {len(survivors)} survivors now killed "
          f"by {', '.join(tests or group.tests)}")
    for mutant, verdict in verdicts:
        print(f"  {verdict}: {mutant}")
    return 0


def _group_of(mutant: str, among: list[str]) -> str:
    """The first group of ``among`` whose module a mutant name
    (``bench.results.across.x_f__mutmut_3``) is in (``leaderboard`` and ``compare`` share one:
    name the group with ``--groups``)."""
    for name in among:
        for module in GROUPS[name].modules:
            if mutant.startswith(module[:-len(".py")].replace("/", ".") + "."):
                return name
    raise SystemExit(f"mutation: no group mutates {mutant}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", default=",".join(GROUPS),
                        help=f"comma-separated groups to run (default all: {', '.join(GROUPS)})")
    parser.add_argument("--max-children", type=int, default=2, help="parallel test runs")
    parser.add_argument("--min-score", type=float, default=90.0,
                        help="percent of each group's mutants that must be killed (default 90)")
    parser.add_argument("--show", metavar="MUTANT", help="print one mutant's diff and exit")
    parser.add_argument("--resume", action="store_true",
                        help="continue the groups' last runs (their mutants without a result)")
    parser.add_argument("--check", nargs="*", metavar="TEST",
                        help="after a run: which of its survivors the checkout's tests (these, "
                             "default the group's) kill now, without rerunning the rest")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.groups.split(",") if n.strip()]
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        parser.error(f"unknown groups {unknown}; choose from {', '.join(GROUPS)}")
    if args.show:
        return _mutmut(_group_of(args.show, names), "show", args.show).returncode
    if args.check is not None:
        return max(check(name, args.check) for name in names)
    ok = True
    for name in names:
        result = run_group(name, args.max_children, args.resume)
        if result is None:
            return 2
        caught, total = result
        ok = ok and 100.0 * caught / max(total, 1) >= args.min_score
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
