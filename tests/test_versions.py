"""The versions recorded with every trial, read without importing what they describe."""

from __future__ import annotations

import sys
from importlib import metadata

from bench.common import versions


def test_tensorflow_s_version_comes_from_its_build_s_metadata_without_a_scan(monkeypatch):
    import tensorflow as tf

    monkeypatch.delitem(sys.modules, "tensorflow")  # as in the sweep's driver
    versions._distributions.cache_clear()
    assert versions._version("tensorflow") == tf.__version__
    assert versions._distributions.cache_info().misses == 0  # tensorflow-cpu found by name


def test_a_module_installed_under_another_name_is_found_by_a_scan(monkeypatch):
    monkeypatch.delitem(sys.modules, "yaml", raising=False)
    assert versions._version("yaml") == metadata.version("PyYAML")


def test_every_recorded_version_is_the_loaded_module_s():
    import keras
    import mlflow
    import ray
    import tensorflow as tf

    import zoo

    assert versions.versions() == {"zoobench": zoo.__version__, "tensorflow": tf.__version__,
                                   "keras": keras.__version__, "ray": ray.__version__,
                                   "mlflow": mlflow.__version__}
