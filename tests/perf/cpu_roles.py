"""CPU seconds of a command's processes by role, sampled while it runs (psutil, Linux).

On a machine whose cores are all busy, a sweep's wall follows the CPU that all its
processes spend, wherever it is spent: a child that checks the spec, Ray's own processes,
the trial workers. So ``sweep_throughput.py --cpu`` prints them beside the walls: they
say, role by role, where one side's extra wall goes (a busier machine inflates both).

    with CpuByRole() as cpu:
        subprocess.run([...])
    cpu.seconds()   # {"driver": 8.1, "spec check child": 5.2, "trial workers": 61.0, ...}

Each descendant of this process is sampled every ``interval`` seconds and keeps the last
CPU time seen (its own user + system, not its children's, which its own sampling counts),
so a process that ends between two samples loses at most one interval of CPU. ``busy_s`` and
``idle_s`` are the whole machine's (``psutil.cpu_times``).
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import psutil

# Ray's own processes (not trial workers), by a word of their command line.
RAY_OWN = ("raylet", "gcs_server", "dashboard", "log_monitor", "monitor.py",
           "ray::DashboardAgent", "ray::RuntimeEnvAgent", "runtime_env", "ray_client_server")


def role(cmdline: str) -> str:
    """The role of a process, from its command line."""
    if "spawn_main" in cmdline or "multiprocessing" in cmdline:
        return "spec check child"
    if any(word in cmdline for word in RAY_OWN):
        return "Ray's own processes"
    if cmdline.startswith("ray::") or "default_worker.py" in cmdline:
        return "trial workers"
    if " bench sweep" in cmdline or "ray_floor.py" in cmdline:
        return "driver"
    return "other"


def _machine() -> tuple[float, float]:
    """Busy and idle CPU seconds of the whole machine since boot (idle counts I/O wait)."""
    times = psutil.cpu_times()
    busy = times.user + times.nice + times.system + times.irq + times.softirq + times.steal
    return busy, times.idle + times.iowait


class CpuByRole:
    """Context manager: samples this process's descendants while the block runs."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self._seen: dict[tuple[int, float], tuple[str, float]] = {}  # (pid, start) -> role, s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.busy_s = self.idle_s = 0.0

    def _sample(self) -> None:
        for child in psutil.Process().children(recursive=True):
            try:
                with child.oneshot():
                    key = (child.pid, child.create_time())
                    times = child.cpu_times()
                    cmdline = " ".join(child.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            # A Ray worker is renamed when it takes a trial: the latest name says its role;
            # an ending process reads as no command line, and keeps the role it had.
            known = self._seen.get(key, ("other", 0.0))[0]
            self._seen[key] = (role(cmdline) if cmdline else known, times.user + times.system)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> CpuByRole:
        self._start = _machine()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        busy, idle = _machine()
        self.busy_s, self.idle_s = busy - self._start[0], idle - self._start[1]

    def seconds(self) -> dict[str, float]:
        """CPU seconds by role (roles with none left out), and ``all`` of them together."""
        totals: dict[str, float] = {}
        for name, seconds in self._seen.values():
            totals[name] = totals.get(name, 0.0) + seconds
        totals["all"] = sum(totals.values())
        return totals


if __name__ == "__main__":  # a smoke run: this interpreter's child, busy for a second
    import subprocess
    import sys

    with CpuByRole() as cpu:
        subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\n"
                        "while time.process_time() - t < 1: pass"], check=True)
        time.sleep(0.3)
    print(cpu.seconds(), f"busy {cpu.busy_s:.1f} s, idle {cpu.idle_s:.1f} s")
