"""Versions of what produced a sweep's results, read without importing TensorFlow."""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import re
import sys
from importlib import metadata
from pathlib import Path

# The distributions that install a module under another name (pip's TensorFlow builds).
_BUILDS = {"tensorflow": ("tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel",
                          "tensorflow-macos", "tf-nightly", "tf-nightly-cpu")}


def versions() -> dict[str, str]:
    """Versions of what produced the results (recorded with every trial).

    Read from the installed distributions' metadata where a module is not loaded: the
    driver of ``zoobench sweep`` never imports TensorFlow (``bench.spec.check_process``).
    """
    return {"zoobench": _zoo_version(), "tensorflow": _version("tensorflow"),
            "keras": _version("keras"), "ray": _version("ray"), "mlflow": _version("mlflow")}


def _version(module: str) -> str:
    """``module.__version__`` when it is loaded, else its distribution's version (the
    distribution that provides it: ``tensorflow`` may come as ``tensorflow-cpu``)."""
    loaded = sys.modules.get(module)
    if loaded is not None and isinstance(getattr(loaded, "__version__", None), str):
        return loaded.__version__
    # A distribution named as the module, or as TensorFlow's builds are, is found at once;
    # a scan of every installed distribution (0.2-1.2 s, before the first trial) finds others.
    for distribution in (module, *_BUILDS.get(module, ())):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(distribution)
    for distribution in _distributions().get(module, []):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(distribution)
    return importlib.import_module(module).__version__


def _zoo_version() -> str:
    """``zoo.__version__`` of the ``zoo`` this process imports, read from its file:
    importing it would load TensorFlow (its registries are Keras code)."""
    loaded = sys.modules.get("zoo")
    if loaded is not None:
        return loaded.__version__
    found = importlib.util.find_spec("zoo")
    text = Path(found.origin).read_text(encoding="utf-8") if found and found.origin else ""
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    return match.group(1) if match else importlib.import_module("zoo").__version__


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())
