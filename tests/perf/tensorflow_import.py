"""TensorFlow's import in a fresh interpreter: whole, and as zoobench's processes import it.

    python tests/perf/tensorflow_import.py [--pairs 5]

Alternates the two in fresh interpreters (``--pairs`` of each, whole first) and prints
each run's seconds (wall and CPU of the import alone), the medians and their ratio:
"whole" is ``import tensorflow`` as any script does it (Keras imports scikit-learn,
matplotlib's pyplot and IPython for its optional integrations when they are installed),
"zoobench" is ``bench.common.tensorflow_import.import_tensorflow`` (the spec check's child
and every trial worker), which keeps those three out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = {
    "whole": "import tensorflow",
    "zoobench": "from bench.common.tensorflow_import import import_tensorflow; "
                "import_tensorflow()",
}
TIMED = """
import json, sys, time
wall, cpu = time.perf_counter(), time.process_time()
{code}
print(json.dumps({{"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "modules": len(sys.modules)}}))
"""


def timed(kind: str) -> dict[str, float]:
    """One fresh interpreter importing TensorFlow the ``kind`` way; its figures."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", TIMED.format(code=CODE[kind])], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in CODE}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for pair in range(args.pairs):
        for kind in CODE:
            runs[kind].append(timed(kind))
            run = runs[kind][-1]
            print(f"pair {pair + 1} {kind:>8}: wall {run['wall']:.2f} s, cpu {run['cpu']:.2f} s,"
                  f" {run['modules']} modules", flush=True)
    medians = {kind: {key: statistics.median(r[key] for r in rs) for key in ("wall", "cpu")}
               for kind, rs in runs.items()}
    for kind, median in medians.items():
        print(f"median {kind:>8}: wall {median['wall']:.2f} s, cpu {median['cpu']:.2f} s")
    for key in ("wall", "cpu"):
        print(f"zoobench / whole, {key}: {medians['zoobench'][key] / medians['whole'][key]:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
