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


DRIVER = """
import sys
import bench.cli
code = bench.cli.main(sys.argv[1:])
print("local Ray running after the command:", sys.modules["ray"].is_initialized())
print("tensorflow in the driver:", "tensorflow" in sys.modules)
sys.exit(code)
"""

ONE_TRIAL = """\
name: lean
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 8, val: 8}
models: [testnet]
losses: [dice]
seeds: [0]
epochs: 1
params: {batch_size: 16, lr: 1.0e-3}
resources: {cpu: 1, gpu: 0}
"""


def test_a_sweep_checks_its_spec_in_a_child_and_its_driver_never_loads_tensorflow(tmp_path):
    """The spec is checked in a child process while Ray starts (bench.spec.check_process):
    its warnings still reach the console, the sweep runs, and the driver records the
    versions of what trained without importing TensorFlow itself."""
    import json

    import keras
    import pandas as pd
    import tensorflow as tf

    (tmp_path / "lean.yaml").write_text(ONE_TRIAL)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", DRIVER, "sweep", "lean.yaml", "--results",
                           "r"], env=env, capture_output=True, text=True, cwd=tmp_path,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "tensorflow in the driver: False"
    # The command ended the Ray it started itself (Ray's exit hook would sleep 0.5 s).
    assert done.stdout.strip().splitlines()[-2] == "local Ray running after the command: False"
    # The child's warning, as load_spec words it, is the console's only line on stderr:
    # none of TensorFlow's start-up lines from the child, none of Ray's.
    assert done.stderr == ("zoobench: warning: lean.yaml: params.batch_size: 16 is larger "
                           "than the training split (8 samples): an epoch is then one batch "
                           "of 8\n")
    trials = pd.read_parquet(tmp_path / "r" / "trials.parquet")
    assert trials["status"].tolist() == ["TERMINATED"]
    versions = json.loads(trials["versions"].iloc[0])
    assert versions["tensorflow"] == tf.__version__
    assert versions["keras"] == keras.__version__


def test_the_spec_s_child_builds_the_first_datasets_into_the_sweep_s_cache(tmp_path):
    """After the spec, the child that checked it builds the first stage's data, then ends."""
    from bench.run import data_cache
    from bench.run.sweep import first_datasets
    from bench.spec.check_process import PendingSpec

    spec_file = tmp_path / "s.yaml"
    spec_file.write_text("name: s\ndataset: {name: digits, height: 16, width: 16, train: 24, "
                         "val: 8, test: 8}\nmodels: [testnet]\nlosses: [dice]\n"
                         "seeds: [3, 4]\n")
    folder = data_cache.open_cache(tmp_path, "s")
    with PendingSpec(spec_file, None, verbose=False) as pending:
        spec = pending.result()
        datasets = first_datasets(spec)
        assert datasets == [("digits", 3, spec.dataset_options),
                            ("digits", 4, spec.dataset_options)]
        built = pending.then(data_cache.prebuild, folder, datasets)
        assert built.result(timeout=120) == 2
        assert pending.then(data_cache.prebuild, folder, datasets) is None  # it has ended
    import numpy as np

    import zoo

    for name, seed, options in datasets:
        cached = data_cache.cached_arrays(folder, name, seed, options)
        fresh = zoo.datasets.build_arrays(name, seed=seed, **options)
        np.testing.assert_array_equal(cached.x_train, fresh.x_train)
        np.testing.assert_array_equal(cached.y_test, fresh.y_test)


def test_a_job_the_sweep_outlived_is_ended_with_the_child(tmp_path):
    """Leaving the block ends a child still at its job (an interrupted sweep does not wait
    for the first datasets' build)."""
    import time

    from bench.spec.check_process import PendingSpec

    spec_file = tmp_path / "s.yaml"
    spec_file.write_text("name: s\ndataset: {name: shapes, height: 16, width: 16, train: 8, "
                         "val: 8, test: 8}\nmodels: [testnet]\nlosses: [dice]\n")
    with PendingSpec(spec_file, None, verbose=False) as pending:
        pending.result()
        job = pending.then(time.sleep, 120)
        time.sleep(1.0)
        assert not job.done()
        child = pending._child
    started = time.monotonic()
    while Path(f"/proc/{child}").exists() and time.monotonic() - started < 30:
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists()
    assert time.monotonic() - started < 30


CHILD_EXIT = """
import atexit, os, sys, time
from pathlib import Path

# Module level: the spawned child runs it too (as __mp_main__), before the spec's check.
MARKS = Path(os.environ["MARKS"])
atexit.register(lambda: (MARKS / f"finalized-{os.getpid()}").write_text(""))


def running(pid):
    try:  # a zombie has ended; only its parent's wait is left
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main():
    from bench.spec.check_process import PendingSpec

    with PendingSpec(sys.argv[1], None, verbose=False) as pending:
        pending.result()
        child = pending._child
        pending.then(print, "the child's last line").result()  # no flush: a pipe buffers it
    while running(child):
        time.sleep(0.01)
    print("parent", os.getpid(), "child", child)


if __name__ == "__main__":
    main()
"""


def test_the_spec_s_child_leaves_without_finalizing_tensorflow(tmp_path):
    """The child ends at once after its last job: its buffered output is flushed, but exit
    handlers registered before its check (TensorFlow's, here a marker) and the interpreter's
    teardown are skipped (0.7-1.0 s of CPU while the first trials start); the driver's own
    exit handlers still run."""
    script = tmp_path / "drive.py"
    script.write_text(CHILD_EXIT)
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text("name: s\ndataset: {name: shapes, height: 16, width: 16, train: 8, "
                         "val: 8, test: 8}\nmodels: [testnet]\nlosses: [dice]\n")
    marks = tmp_path / "marks"
    marks.mkdir()
    done = subprocess.run([sys.executable, str(script), str(spec_file)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MARKS": str(marks)})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert "the child's last line" in lines
    _, parent, _, child = lines[-1].split()
    assert sorted(p.name for p in marks.iterdir()) == [f"finalized-{parent}"], child


def test_a_spec_checked_in_place_leaves_the_exit_alone(tmp_path):
    """Only a child of ours leaves without finalizing: the check run in this process (a
    notebook, the tests) registers no exit handler."""
    import atexit

    from bench.spec import check_process

    spec_file = tmp_path / "s.yaml"
    spec_file.write_text("name: s\ndataset: {name: shapes, height: 16, width: 16, train: 8, "
                         "val: 8, test: 8}\nmodels: [testnet]\nlosses: [dice]\n")
    check_process._check(spec_file, None, False)  # the imports' own handlers, if any
    before = atexit._ncallbacks()
    spec, refusal, pid = check_process._check(spec_file, None, False)
    assert (spec.name, refusal, pid) == ("s", None, os.getpid())
    assert atexit._ncallbacks() == before


IDLE_WORKERS = """
import os, time
from bench.run.sweep import _init_ray
import ray
_init_ray(None)
raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
def idle():
    found = 0
    for entry in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{entry}/stat").read()
            args = open(f"/proc/{entry}/cmdline", "rb").read()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == raylet and args.startswith(b"ray::IDLE"):
            found += 1
    return found
time.sleep(4)  # prestarted workers register within 1-2 s
print(idle())
ray.shutdown()
"""


@pytest.mark.parametrize("setting", [None, "1"])
def test_a_local_ray_starts_no_idle_workers_unless_the_user_asks(setting) -> None:
    """Ray's workers prestarted for the first driver are never a trial's (Tune's actors
    have a runtime_env of their own): zoobench's local Ray starts none; the user's own
    ``RAY_prestart_worker_first_driver`` wins (then one a CPU)."""
    env = {key: value for key, value in os.environ.items()
           if key != "RAY_prestart_worker_first_driver"}
    if setting is not None:
        env["RAY_prestart_worker_first_driver"] = setting
    out = subprocess.run([sys.executable, "-c", IDLE_WORKERS], capture_output=True,
                         text=True, env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    idle = int(out.stdout.strip().splitlines()[-1])
    assert idle == 0 if setting is None else idle >= 1


RAY_EXIT = """
from bench.run.sweep import SweepOptions, _init_ray, stop_local_ray
import ray
_init_ray(None)
processes = {kind: [info.process for info in infos] for kind, infos
             in ray._private.worker._global_node.all_processes.items()}
(monitor,), (gcs,) = processes["monitor"], processes["gcs_server"]
shutdown = ray.shutdown
def observed_shutdown(*args, **kwargs):
    print("when ray.shutdown starts: monitor", monitor.poll(), "gcs alive", gcs.poll() is None)
    return shutdown(*args, **kwargs)
ray.shutdown = observed_shutdown
stop_local_ray(SweepOptions(results="r"))
print("left:", sorted(kind for kind, ps in processes.items() for p in ps if p.poll() is None))
"""


def test_the_local_ray_s_monitor_is_ended_before_its_gcs_and_nothing_is_left() -> None:
    """``ray.shutdown`` ends the GCS before the autoscaler monitor, whose SIGTERM handler
    then waits on the GCS until killed a second later: ``stop_local_ray`` ends the monitor
    first, by its PID (SIGKILL), while the GCS still runs, and the shutdown leaves no Ray
    process."""
    import signal

    out = subprocess.run([sys.executable, "-c", RAY_EXIT], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()[-2:]
    assert lines[0] == f"when ray.shutdown starts: monitor {-signal.SIGKILL} gcs alive True"
    assert lines[1] == "left: []"


def test_the_command_line_leaves_its_objects_out_of_the_exit_s_collections() -> None:
    """``zoobench`` (the entry point and ``python -m bench``) freezes the collector after
    its command (the exit's last collections took 0.7 s): the command's output and status
    are as before, and exit handlers still run."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["zoobench"] == "bench.cli:command_line"
    code = ("import atexit, gc, runpy, sys\n"
            "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
            "sys.argv = ['zoobench', 'models']\n"
            "runpy.run_module('bench', run_name='__main__')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "unet" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "frozen at exit: True"
