"""The CLI parses its commands without importing TensorFlow, Ray, MLflow, pandas or SciPy
(fast start-up: `zoobench --help` in ~0.3 s)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import sys
import bench.cli
parser = bench.cli.build_parser()
for argv in {argvs!r}:
    parser.parse_args(argv)
heavy = sorted(m for m in ("tensorflow", "keras", "ray", "mlflow", "matplotlib", "pandas",
                          "scipy") if m in sys.modules)
print(",".join(heavy) or "none")
"""


@pytest.mark.parametrize("argvs", [
    [["leaderboard"]],
    [["report"]],
    [["sweep", "spec.yaml", "--results", "r"]],
    [["models"]],
])
def test_parsing_commands_imports_no_heavy_library(argvs: list[list[str]]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHECK.format(argvs=argvs)], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "none"


def test_help_exits_without_tensorflow() -> None:
    code = ("import sys, bench.cli\n"
            "try:\n    bench.cli.main(['--help'])\nexcept SystemExit as e:\n"
            "    assert e.code == 0\n"
            "print('tensorflow' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert "sweep" in out.stdout
