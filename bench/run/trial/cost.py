"""What a trained model costs to run: FLOPs, inference latency and throughput, peak memory.

Measured once per tested trial, on its selected weights, right after testing them
(``bench.run.trial.final``), the way mmsegmentation's benchmark tool does: warm-up steps
discarded, then a fixed number of timed steps, the median reported with its spread.

- ``flops``: forward floating-point operations per sample at the trained input size,
  counted by TensorFlow's profiler (``tf.compat.v1.profiler``, ``float_operation``) on
  the graph of the model's concrete function at batch 1. The profiler knows each
  op's cost from its shapes, so every op of the graph is counted (not only the layers a
  per-layer table knows): a convolution is 2·H·W·k²·Cin·Cout (a multiply and an add per
  weight and output pixel), a bias add one per output element, activations and
  normalisation their own. Ops inside a loop body (a recurrent layer's ``While``) are
  not counted: recurrent models' figures are a lower bound.
- ``latency_ms``: one sample (batch 1), milliseconds per forward pass; also
  ``latency_p10_ms`` and ``latency_p90_ms``.
- ``throughput``: samples per second at the training batch size.
- ``peak_memory_mb``: the trial's peak resident memory on CPU (Linux: ``VmHWM``, reset at
  each trial's start through ``/proc/self/clear_refs``, so a reused worker does not report
  an earlier trial's peak; elsewhere the process's ``ru_maxrss``); TensorFlow's peak
  device memory (``tf.config.experimental.get_memory_info``, reset likewise) when a GPU
  is visible.
- ``cost_seconds``: what measuring all this took.

The forward pass is a ``tf.function`` of ``model(x, training=False)``; reading its result
into NumPy waits for the device, so GPU timings include the work, not only its launch.
"""

from __future__ import annotations

import contextlib
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common.names import COST_COLUMNS

WARMUP_STEPS = 3  # discarded: tracing, allocation, caches
LATENCY_STEPS = 20  # timed batch-1 passes
THROUGHPUT_STEPS = 5  # timed passes at the training batch size


def forward_function(model: Any, input_shape: tuple[int, ...]) -> Any:
    """``model(x, training=False)`` as one concrete function taking any batch size:
    ``(B, *input_shape) -> model output``. Traced once (the costly part of measuring)."""
    import tensorflow as tf

    forward = tf.function(lambda x: model(x, training=False),
                          input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)])
    return forward.get_concrete_function()


def count_flops(forward: Any, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs for one sample of shape ``input_shape`` (no batch axis) of the concrete
    function ``forward`` (see :func:`forward_function`).

    TensorFlow's profiler (``float_operation``) on the function's graph re-imported at
    batch 1, each variable read replaced by a placeholder of the variable's shape, so that
    every op's shape is known without freezing the weights into constants (which costs
    as much as a second trace). See the module docstring for what it counts. Returns 0
    when the profiler finds no float op.
    """
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        inputs = {forward.inputs[0].name: tf.compat.v1.placeholder(tf.float32,
                                                                   (1, *input_shape))}
        for op in forward.graph.get_operations():
            if op.type == "ReadVariableOp":
                read = op.outputs[0]
                inputs[read.name] = tf.compat.v1.placeholder(read.dtype, read.shape)
        tf.graph_util.import_graph_def(forward.graph.as_graph_def(), input_map=inputs,
                                       name="")
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"  # the profiler prints its table otherwise
        profile = tf.compat.v1.profiler.profile(graph=graph, cmd="op", options=options)
    return int(profile.total_float_ops) if profile is not None else 0


def _timed(forward: Any, x: Any, steps: int) -> np.ndarray:
    """Seconds of each of ``steps`` calls ``forward(x)``, after ``WARMUP_STEPS`` untimed ones."""
    for _ in range(WARMUP_STEPS):
        np.asarray(forward(x))
    times = np.empty(steps)
    for step in range(steps):
        start = time.perf_counter()
        np.asarray(forward(x))  # to NumPy: waits for the device to finish
        times[step] = time.perf_counter() - start
    return times


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_memory() -> bool:
    """Start a new peak: RSS high-water mark to the current RSS (Linux), GPU 0's peak.

    Called at each trial's start, since a reused worker runs several. Returns whether the
    CPU peak could be reset (else :func:`peak_memory_mb` reads the process's lifetime peak).
    """
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        with contextlib.suppress(ValueError, RuntimeError):
            tf.config.experimental.reset_memory_stats("GPU:0")
    try:
        _CLEAR_REFS.write_text("5")  # "5": reset the peak RSS (Linux >= 4.0, proc(5))
        return True
    except OSError:
        return False


def _status_kib(field: str) -> int | None:
    """A memory field of ``/proc/self/status`` in KiB (``VmRSS``: resident now, ``VmHWM``:
    the peak since the last reset); None where there is no ``/proc``."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def resident_mb() -> float:
    """This process's resident memory now, in MiB (NaN where there is no ``/proc``)."""
    resident = _status_kib("VmRSS")
    return resident / 2**10 if resident is not None else math.nan


def peak_memory_mb() -> float:
    """Peak memory in MiB since :func:`reset_peak_memory`: GPU 0's peak when a GPU is
    visible, else the peak RSS."""
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    high_water = _status_kib("VmHWM")
    if high_water is not None:
        return high_water / 2**10
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, else KiB


def measure_cost(model: Any, input_shape: tuple[int, ...], batch_size: int,
                 forward: Any = None) -> dict[str, float]:
    """The cost columns (``COST_COLUMNS``) of ``model`` on inputs of ``input_shape``
    (one sample, no batch axis, e.g. ``(32, 32, 3)`` or ``(T, H, W, C)``).

    ``throughput`` is measured at ``batch_size`` (the training batch size). ``forward``:
    the model's :func:`forward_function` when the caller traced it already.
    """
    import tensorflow as tf

    start = time.perf_counter()
    if forward is None:
        forward = forward_function(model, input_shape)
    one = tf.zeros((1, *input_shape), tf.float32)
    batch = tf.zeros((max(1, int(batch_size)), *input_shape), tf.float32)
    latency = _timed(forward, one, LATENCY_STEPS) * 1000.0
    batch_times = _timed(forward, batch, THROUGHPUT_STEPS)
    cost = {
        "flops": float(count_flops(forward, input_shape)),
        "latency_ms": float(np.median(latency)),
        "latency_p10_ms": float(np.percentile(latency, 10)),
        "latency_p90_ms": float(np.percentile(latency, 90)),
        "throughput": float(batch.shape[0] / np.median(batch_times)),
        "peak_memory_mb": float(peak_memory_mb()),
    }
    cost["cost_seconds"] = time.perf_counter() - start
    return cost


def trial_cost(model: Any, input_shape: tuple[int, ...], batch_size: int,
               forward: Any = None) -> dict[str, float]:
    """:func:`measure_cost`, or NaN in every cost column (and a warning on stderr) when the
    model cannot be measured: a trained and tested trial is not lost for its cost figures.
    """
    try:
        return measure_cost(model, input_shape, batch_size, forward)
    except Exception as error:  # noqa: BLE001  (any op the profiler or tracing refuses)
        print(f"zoobench: warning: cost not measured ({type(error).__name__}: {error})",
              file=sys.stderr)
        return dict.fromkeys(COST_COLUMNS, math.nan)
