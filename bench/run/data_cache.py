"""Build each dataset once per sweep: its arrays cached on disk, keyed by what defines them.

A dataset is deterministic in ``(name, seed, options)`` (``zoo.datasets.build_arrays``),
so the first trial needing a key builds the arrays and writes them to
``<cache>/<key>.npz``; every later trial with that key reads them back (a few ms for
the reference data, against decoding and resizing a ``folder`` again). A key is built
under a lock (``flock`` on ``<key>.lock``, dropped if its holder dies): trials that start
together wait for one build instead of each decoding the folder (eight slots of a GPU
node used to decode it eight times at once). The file is written through a temporary
file and a rename, so a reader never sees half of it; without the lock (a filesystem
that refuses it) trials build side by side, as they did.

``zoobench sweep`` also has the first stage's datasets built here by the process that
checked the spec (``prebuild``, run by ``bench.spec.check_process``), which has the zoo loaded
already, while the first trials' workers import TensorFlow.

Why a file and not Ray's object store: trials may be fresh processes (a worker's
first trial, or ``reuse_workers: false``), and a lazy file cache costs the first trial
nothing extra, where building every key in the driver before the first trial delays it
(one build per seed), and it needs no Ray at all.
The driver makes the folder per sweep run and removes it when the run ends, so a
changed ``folder`` dataset is never read stale by a later run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common.file_lock import file_lock

CACHE_DIR = ".cache"  # under the results folder: <results>/.cache/datasets/<sweep>
_META = "__meta__"


def cache_folder(results: Path, sweep: str) -> Path:
    """Where a sweep run's dataset arrays are cached (made by ``open_cache``)."""
    return results / CACHE_DIR / "datasets" / sweep


def open_cache(results: Path, sweep: str) -> Path:
    """A fresh, empty cache folder for this run of ``sweep`` (an old one is removed)."""
    folder = cache_folder(results, sweep)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def close_cache(folder: Path) -> None:
    """Remove a run's cache (the arrays can always be rebuilt)."""
    shutil.rmtree(folder, ignore_errors=True)


def dataset_key(name: str, seed: int, options: dict[str, Any]) -> str:
    """A file name for ``(name, seed, options)``: 16 hex digits of their SHA-256.

    Options in any order give the same key; the pipeline-only options
    (``labelled_fraction``, ``labelled_per_batch``) are left out, as the arrays do not
    depend on them.
    """
    from zoo.datasets.registry import COMMON_OPTIONS

    kept = {k: v for k, v in sorted(options.items()) if k not in COMMON_OPTIONS}
    text = json.dumps({"name": name, "seed": int(seed), "options": kept}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write(arrays: Any, path: Path) -> None:
    meta = {"n_classes": arrays.n_classes, "class_names": list(arrays.class_names),
            "kind": arrays.kind, "task": arrays.task}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **{f"{split}": getattr(arrays, split) for split in
                                ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")},
                     **{_META: np.array(json.dumps(meta))})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path) -> Any:
    from zoo.datasets import SplitArrays

    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data[_META]))
        arrays = {key: data[key] for key in data.files if key != _META}
    return SplitArrays(**arrays, **meta)


def cached_arrays(folder: Path | None, name: str, seed: int, options: dict[str, Any]) -> Any:
    """``zoo.datasets.build_arrays(name, seed=seed, **options)``, read from ``folder`` when a
    trial built them before, else built and written there (one build per key: who comes
    while it is built waits for it). ``folder=None``: just built.

    Returns the dataset's ``SplitArrays``.
    """
    import zoo

    if folder is None or not folder.is_dir():  # no cache, or not on this node
        return zoo.datasets.build_arrays(name, seed=seed, **options)
    path = _file(folder, name, seed, options)
    # A file is whole once it is there (a rename), so readers need no lock, only builders.
    arrays = _read_if_there(path)
    if arrays is not None:
        return arrays
    with file_lock(path.with_suffix(".lock")):
        arrays = _read_if_there(path)  # built while this trial waited
        if arrays is None:
            arrays = zoo.datasets.build_arrays(name, seed=seed, **options)
            with contextlib.suppress(OSError):  # a full or read-only disk costs speed only
                _write(arrays, path)
    return arrays


def _file(folder: Path, name: str, seed: int, options: dict[str, Any]) -> Path:
    """Where ``(name, seed, options)``'s arrays are kept in the cache ``folder``."""
    return folder / f"{dataset_key(name, seed, options)}.npz"


def _read_if_there(path: Path) -> Any:
    """The arrays at ``path``; None when it is missing or unreadable (then built again)."""
    if not path.exists():
        return None
    try:
        return _read(path)
    except (OSError, ValueError, KeyError):
        return None


def prebuild(folder: Path, datasets: Iterable[tuple[str, int, dict[str, Any]]]) -> int:
    """Build into ``folder`` each ``(name, seed, options)`` not there yet, in order (each
    under its lock, so a trial needing it waits instead of building it too); how many it
    built. A key a trial is building meanwhile is left to that trial."""
    import zoo

    built = 0
    for name, seed, options in datasets:
        path = _file(folder, name, seed, options)
        with file_lock(path.with_suffix(".lock")):
            if not path.exists():
                _write(zoo.datasets.build_arrays(name, seed=seed, **options), path)
                built += 1
    return built
