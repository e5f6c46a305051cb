"""TensorFlow's native start-up lines stay off the console unless --verbose (issue 30)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NATIVE = ("oneDNN", "absl::InitializeLog", "port.cc")


def _zoobench(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-m", "bench", *argv], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120, check=False)


def test_losses_lists_parameters_with_defaults_and_no_native_lines() -> None:
    done = _zoobench("losses")
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in NATIVE)]
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[2:]}
    assert "gamma=2.0, alpha=0.25" in rows["focal"]
    assert "weights=None, smooth=1.0" in rows["dice"]
