"""Mutation testing of the numbers users read: mutmut 3 on the statistics and across modules.

Copies what the tests need into a scratch folder (so mutmut's ``mutants/`` copy and cache
never land in the checkout), writes mutmut's configuration there, runs ``mutmut run`` with
only the fast tests of those modules, then prints the score and every surviving mutant.

    pip install -e ".[test,mutation]"
    python tests/mutation/run.py                  # ~15-25 min on 2 cores
    python tests/mutation/run.py --show NAME      # the diff of one mutant (after a run)

Exit status 0 when at least ``--min-score`` percent of the mutants are killed, else 1.
docs/mutation.md lists the survivors of the last recorded run, each classified.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The modules mutated (files under REPO).
MODULES = ["bench/results/stats.py", "bench/results/across.py"]
#: The fast tests that check them (no Ray, no report rendering, no TensorFlow).
TESTS = ["tests/test_stats.py", "tests/test_across.py", "tests/test_properties.py"]
#: Left out of the mutation runs: the report's Chromium render and TensorFlow's import
#: (per-case metrics) take seconds per mutant and check neither module more closely.
DESELECT = "not report and not per_case"
SCRATCH = Path(os.environ.get("ZOOBENCH_MUTATION_DIR", "/tmp/zoobench-mutation"))


def _config(max_children: int) -> str:
    quoted = ", ".join(f'"{m}"' for m in MODULES)
    tests = ", ".join(f'"{t}"' for t in TESTS)
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["bench"]\n'
        f"only_mutate = [{quoted}]\n"
        f"pytest_add_cli_args_test_selection = [{tests}]\n"
        f'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q", '
        f'"-k", "{DESELECT}"]\n'
        "use_git_change_detection = false\n"
    )


def prepare(max_children: int) -> None:
    """A fresh scratch copy: bench, zoo (imported by bench), the tests, pyproject + config."""
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    SCRATCH.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("bench", "zoo"):
        shutil.copytree(REPO / folder, SCRATCH / folder, ignore=ignore)
    (SCRATCH / "tests").mkdir()
    for name in ("__init__.py", "conftest.py", "test_leaderboard.py", *[Path(t).name
                                                                        for t in TESTS]):
        shutil.copy2(REPO / "tests" / name, SCRATCH / "tests" / name)
    # mutmut fills mutants/ later; it must exist before Python starts, or the import
    # system caches it as absent and `tests` (on PYTHONPATH) is never found.
    (SCRATCH / "mutants").mkdir()
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    (SCRATCH / "pyproject.toml").write_text(text + _config(max_children), encoding="utf-8")


def _mutmut(*args: str, capture: bool = False) -> subprocess.CompletedProcess:
    # mutmut runs the tests against its mutants/ copy; that copy must come before the
    # installed (editable) checkout on the path.
    env = dict(os.environ, PYTHONPATH=str(SCRATCH / "mutants"), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=SCRATCH, env=env,
                          text=True, capture_output=capture, check=False)


def results() -> dict[str, str]:
    """Mutant name -> status ("killed", "survived", "timeout", ...), from ``mutmut results``."""
    done = _mutmut("results", "--all", "true", capture=True)
    if done.returncode != 0:  # older 3.x: no --all
        done = _mutmut("results", capture=True)
    status = {}
    for line in done.stdout.splitlines():
        match = re.match(r"\s*([\w.]+__mutmut_\d+):\s*(\w[\w ]*)", line)
        if match:
            status[match.group(1)] = match.group(2).strip()
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-children", type=int, default=2, help="parallel test runs")
    parser.add_argument("--min-score", type=float, default=90.0,
                        help="percent of mutants that must be killed (default 90)")
    parser.add_argument("--show", metavar="MUTANT", help="print one mutant's diff and exit")
    args = parser.parse_args(argv)
    if args.show:
        return _mutmut("show", args.show).returncode
    prepare(args.max_children)
    run = _mutmut("run", "--max-children", str(args.max_children))
    if run.returncode not in (0, 1):
        print(f"mutation: mutmut run failed with status {run.returncode}", file=sys.stderr)
        return run.returncode
    status = results()
    if not status:
        print("mutation: mutmut reported no mutants", file=sys.stderr)
        return 1
    killed = sum(s == "killed" for s in status.values())
    # A mutant that makes the tests time out or crash is caught too: it cannot pass.
    caught = killed + sum(s in ("timeout", "segfault") for s in status.values())
    total = sum(s not in ("skipped", "not checked") for s in status.values())
    score = 100.0 * caught / max(total, 1)
    print(f"\nmutation score: {caught}/{total} = {score:.1f}% of mutants killed "
          f"({', '.join(MODULES)}; tests: {', '.join(TESTS)}, -k {DESELECT!r})")
    survivors = sorted(name for name, s in status.items() if s in ("survived", "suspicious",
                                                                  "no tests"))
    for name in survivors:
        print(f"  survived: {name} ({status[name]})")
    return 0 if score >= args.min_score else 1


if __name__ == "__main__":
    sys.exit(main())
