"""The zoo's built-in models, losses and datasets as plain data, in ``zoo/catalog.json``.

What ``describe_model``, ``describe_loss`` and ``describe_dataset`` say of every built-in
entry (kind, tasks, size constraint, options and defaults, loss parameters and defaults,
summaries), written to a JSON file beside this module. Readers that must not load Keras or
TensorFlow (``zoobench models|losses|datasets``, the report) read the file without importing
``zoo`` at all: ``import zoo`` registers Keras objects, which is what makes
``keras.saving.load_model`` work after it, and so it cannot be light
(``bench.common.zoo_catalog`` finds the file with ``importlib.util.find_spec``, which does
not run ``zoo/__init__``).

The file is made from the live registries and never by hand::

    python -m zoo.catalog          # rewrite zoo/catalog.json
    python -m zoo.catalog --check  # exit 1 when it differs from the registries

``tests/test_registry.py`` checks that it equals ``build()``. Plugins' entries are not in
it: their modules must be imported to be known (``build(builtin_only=False)`` has them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

CATALOG_NAME = "catalog.json"
_SECTIONS = ("models", "losses", "datasets")


def read_catalog(path: Path | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """The catalog as written: ``{"models"|"losses"|"datasets": {name: record}}``, in
    registration order (default: ``zoo/catalog.json``)."""
    data = json.loads((path or Path(__file__).with_name(CATALOG_NAME)).read_text())
    return {section: data[section] for section in _SECTIONS}


def _builtin(obj: Any) -> bool:
    """Whether a registered object was defined in the zoo (not by a plugin)."""
    return str(getattr(obj, "__module__", "")).startswith("zoo.")


def model_record(info: Any) -> dict[str, Any]:
    """A ``zoo.models.ModelInfo`` as plain data (the divisor at the default options)."""
    return {"kind": info.kind, "task": info.task, "tasks": list(info.tasks),
            "divisor": info.divisor, "min_size": info.min_size,
            "constraint": info.constraint, "options": dict(info.options),
            "summary": info.summary, "paper": info.paper}


def build(builtin_only: bool = True) -> dict[str, dict[str, dict[str, Any]]]:
    """The catalog from the live registries (imports ``zoo``, so Keras and TensorFlow).

    ``builtin_only``: leave out what plugins registered in this process. Values are made
    JSON-like (tuples become lists), so ``build() == read_catalog()`` when the file is
    current.
    """
    from zoo.datasets.registry import DATASETS
    from zoo.losses import LOSSES
    from zoo.models.registry import MODELS

    models = {entry.name: model_record(entry.obj[0]) for entry in MODELS
              if not builtin_only or _builtin(entry.obj[1])}
    losses = {entry.name: {"params": dict(entry.meta.get("params", {})),
                           "summary": entry.summary}
              for entry in LOSSES if not builtin_only or _builtin(entry.obj)}
    datasets = {entry.name: {"kind": entry.obj[0].kind, "options": dict(entry.obj[0].options),
                             "option_help": dict(entry.obj[0].option_help),
                             "summary": entry.obj[0].summary}
                for entry in DATASETS if not builtin_only or _builtin(entry.obj[1])}
    catalog = {"models": models, "losses": losses, "datasets": datasets}
    return json.loads(json.dumps(catalog))


def write_catalog(path: Path | None = None) -> Path:
    """Write ``build()`` to ``path`` (default: ``zoo/catalog.json``); the path written."""
    path = path or Path(__file__).with_name(CATALOG_NAME)
    path.write_text(json.dumps(build(), indent=1) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m zoo.catalog [--check]``: rewrite the catalog, or check it is current."""
    parser = argparse.ArgumentParser(prog="python -m zoo.catalog", description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when zoo/catalog.json differs from the registries")
    args = parser.parse_args(argv)
    if args.check:
        current = read_catalog(Path(__file__).with_name(CATALOG_NAME)) == build()
        print("zoo/catalog.json is current" if current
              else "zoo/catalog.json differs from the registries: run python -m zoo.catalog")
        return 0 if current else 1
    print(f"wrote {write_catalog()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
