"""Ending the local Ray a sweep started: its autoscaler monitor first, then ``ray.shutdown``.

``ray.shutdown`` ends a local Ray's processes one by one, the GCS before the autoscaler
monitor, each with a SIGTERM and up to 1 s to exit. The monitor's SIGTERM handler reports
its end to the GCS, which is gone by then, so it never exits by itself: it is killed when
its second is up, at every sweep's end (1.0 s of the 1.3 s the shutdown took on 2 cores;
``ray/_private/node.py``, ``kill_all_processes``, Ray 2.60). A single-node Ray's monitor
has no nodes to scale or tear down, so ending it first, at once, loses nothing: its
handler's report never reached anyone either.
"""

from __future__ import annotations

import contextlib
import subprocess


def end_monitor_first() -> int:
    """Kill (SIGKILL, by its PID) the autoscaler monitor of the local Ray this process
    started, and reap it; how many processes were ended (0 where Ray keeps no such record,
    as on a cluster this process only joined: ``ray.shutdown`` then does it all as before).
    """
    try:
        from ray._private import ray_constants
        from ray._private.worker import _global_node as node
    except ImportError:  # another Ray layout: nothing ended here, the shutdown still is
        return 0
    if node is None or not getattr(node, "head", False):
        return 0
    ended = 0
    for info in getattr(node, "all_processes", {}).get(ray_constants.PROCESS_TYPE_MONITOR, []):
        process = getattr(info, "process", None)
        if process is None or process.poll() is not None:
            continue
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1)
        ended += 1
    return ended
