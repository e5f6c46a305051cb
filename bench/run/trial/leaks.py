"""What TensorFlow keeps of a finished trial in a warm worker, and how to let it go.

Keras 3's TensorFlow optimizer sums the gradients through the replica context's
``all_reduce``, which wraps them in ``tf.custom_gradient``. Traced inside the train
function, each call registers a gradient function under a fresh name
(``CustomGradient-<uid>``) in TensorFlow's global gradient registry, and never removes it.
That function's closure holds the step's gradient tensors, so the whole traced train
graph of every model a process trains stays alive (tensorflow/tensorflow#97697 and #27492;
keras-team/tf-keras#898 proposes the same purge in ``clear_session``). A warm worker
(``reuse_workers``) grew 25-80 MB a trial because of it.

Dropping the entries registered since the worker's first trial is safe between trials:
the registry is read only while a gradient is being traced, and the last trial's graphs
are finished; a later trace registers its own entries again.
"""

from __future__ import annotations

_PREFIX = "CustomGradient-"
_baseline: frozenset[str] | None = None


def _registry() -> dict | None:
    """TensorFlow's gradient registry (name -> entry), or None where TensorFlow moved it."""
    from tensorflow.python.framework import ops

    return getattr(getattr(ops, "_gradient_registry", None), "_registry", None)


def forget_custom_gradients() -> int:
    """Drop the ``tf.custom_gradient`` entries registered since this process's first call.

    The first call only notes what is registered (what imports and plugins put there,
    kept for good); each later call removes the ``CustomGradient-*`` entries added since.
    Call between trials, with no trace running. Returns how many entries it removed.
    """
    global _baseline
    registry = _registry()
    if registry is None:
        return 0
    if _baseline is None:
        _baseline = frozenset(registry)
        return 0
    stale = [name for name in registry if name.startswith(_PREFIX) and name not in _baseline]
    for name in stale:
        del registry[name]
    return len(stale)
