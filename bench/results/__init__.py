"""Rows to Parquet to numbers: trial records and tables, the leaderboard, its statistics
(pure functions over DataFrames), the comparison across datasets, baselines, pictures."""

from __future__ import annotations

import importlib
from typing import Any

# The room's public face, imported when first used (``bench.results.NAME``), so that
# importing one module of the room does not import the others' heavy dependencies.
_EXPORTS = {
    "load_results": ".leaderboard",
    "aggregate": ".leaderboard",
    "write_table": ".records",
    "with_baselines": ".baselines",
    "friedman": ".across",
    "rank_matrix": ".across",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
