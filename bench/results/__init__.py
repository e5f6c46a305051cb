"""Rows to Parquet to numbers: trial records and tables, the leaderboard, its statistics
(pure functions over DataFrames), the comparison across datasets, baselines, pictures."""

from __future__ import annotations

from bench.common.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "load_results": ".leaderboard",
    "aggregate": ".leaderboard",
    "write_table": ".records",
    "with_baselines": ".baselines",
    "friedman": ".across",
    "rank_matrix": ".across",
})
