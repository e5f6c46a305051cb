"""A warm worker lets go of each trial's traced graphs (``bench.run.trial.leaks``).

Keras 3's TensorFlow optimizer registers a ``tf.custom_gradient`` entry in TensorFlow's
global gradient registry each time a train function is traced, and that entry keeps the
whole traced graph alive. ``reset_process_state``, run at each trial's start, drops them:
after it, nothing of the last trial's model stays, round after round.
"""

from __future__ import annotations

import gc
import weakref

import keras
import numpy as np
import pytest
from tensorflow.python.framework import func_graph, ops

import zoo
from bench.run.trial.leaks import forget_custom_gradients
from bench.run.trial.run import compile_model, reset_process_state


def _live_graphs() -> list[func_graph.FuncGraph]:
    return [o for o in gc.get_objects() if isinstance(o, func_graph.FuncGraph)]


def _train_once(x: np.ndarray, y: np.ndarray) -> weakref.ref:
    """Build, compile (as a trial does) and fit a testnet; a weak reference to the graph
    of its traced train step."""
    model, _, _ = zoo.get_model("testnet", 16, 16, 1, 3, base_filters=4)
    compile_model(model, optimizer=keras.optimizers.Adam(1e-3), loss=zoo.get_loss("dice"),
                  n_classes=3, task="segmentation")
    before = {id(g) for g in _live_graphs()}
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    traced = [g for g in _live_graphs() if id(g) not in before and g.name == "one_step_on_data"]
    assert len(traced) == 1, [g.name for g in traced]
    return weakref.ref(traced[0])


@pytest.mark.slow  # fits models in a row: ~50 s
def test_each_trials_train_graph_is_freed_at_the_next_trials_start():
    rng = np.random.default_rng(0)
    x = rng.random((32, 16, 16, 1), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (32, 16, 16))]
    registry = ops._gradient_registry._registry
    try:
        reset_process_state(first=True)  # a worker's first trial: notes what imports registered
        # ... and freezes what exists (the imports) out of every later collection.
        assert gc.get_freeze_count() > 100_000
        entries = len(registry)
        graphs = []
        for _ in range(3):
            graphs.append(_train_once(x, y))
            reset_process_state()
            # The trial's graph is gone, and with it every graph it held.
            assert graphs[-1]() is None
            assert len(registry) == entries
        assert all(graph() is None for graph in graphs)
    finally:
        gc.unfreeze()  # this is the test process, not a worker


def test_the_first_call_keeps_what_was_registered_before_it():
    """Entries that imports or plugins registered before a worker's first trial stay."""
    registry = ops._gradient_registry._registry
    forget_custom_gradients()
    kept = set(registry)
    assert forget_custom_gradients() == 0
    assert set(registry) == kept
