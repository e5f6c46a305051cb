"""Names, errors and cell labels every room shares; it imports no other room.

Modules: ``errors`` (what the CLI turns into exit codes), ``names`` (checkpoint files, end
reasons, table columns), ``cells`` (dataset x model x loss labels), ``zoo_catalog`` (the
zoo's built-in entries, read without TensorFlow), ``quiet`` (start-up logs kept
off the console), ``tensorflow_import`` (TensorFlow imported lean and quietly),
``file_lock`` (a ``flock`` beside the work it guards), ``environment`` (a variable set
for a block, then put back)."""

from __future__ import annotations

from bench.common.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "UsageError": ".errors",
    "TrialsFailedError": ".errors",
    "error_line": ".errors",
    "cell_label": ".cells",
})
