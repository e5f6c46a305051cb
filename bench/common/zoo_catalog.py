"""The zoo's built-in models, losses and datasets, read without Keras or TensorFlow.

``zoo/catalog.json`` (written by ``python -m zoo.catalog`` from the live registries, and
tested to equal them) is found with ``importlib.util.find_spec``, which does not run
``zoo/__init__`` (that one imports Keras). For the listings and the report, which only
describe the zoo. Plugins' entries need their modules imported: ``live_catalog``.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

Catalog = dict[str, dict[str, dict[str, Any]]]  # section -> name -> record


def catalog_file() -> Path:
    """``zoo/catalog.json`` of the ``zoo`` that ``import zoo`` would import."""
    spec = importlib.util.find_spec("zoo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package 'zoo' not found")
    return Path(next(iter(spec.submodule_search_locations))) / "catalog.json"


@cache
def zoo_catalog() -> Catalog:
    """``{"models"|"losses"|"datasets": {name: record}}`` of the built-in entries, in
    registration order (records as ``zoo.catalog.build`` makes them). Imports no TensorFlow;
    falls back to ``live_catalog()`` when the file is missing (a broken install)."""
    try:
        data = json.loads(catalog_file().read_text())
    except FileNotFoundError:
        return live_catalog()
    return {section: data[section] for section in ("models", "losses", "datasets")}


def live_catalog() -> Catalog:
    """The same from the live registries, plugins' entries included (imports ``zoo``)."""
    from zoo.catalog import build

    return build(builtin_only=False)
