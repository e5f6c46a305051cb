"""Names, errors and cell labels every room shares; it imports no other room.

Modules: ``errors`` (what the CLI turns into exit codes), ``names`` (checkpoint files, end
reasons, table columns), ``cells`` (dataset x model x loss labels), ``zoo_catalog`` (the
zoo's built-in entries, read without TensorFlow), ``quiet`` (TensorFlow imported quietly)."""

from __future__ import annotations

import importlib
from typing import Any

# The room's public face, imported when first used (``bench.common.NAME``), so that
# importing one module of the room does not import the others' heavy dependencies.
_EXPORTS = {
    "UsageError": ".errors",
    "TrialsFailedError": ".errors",
    "error_line": ".errors",
    "cell_label": ".cells",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
