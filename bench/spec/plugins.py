"""Plugins: the user's own models, losses and datasets, registered by importing a module.

A plugin is a Python module that calls zoo's public registration functions when imported::

    # my_package/extra_models.py
    import keras
    import zoo

    @zoo.register_model("my_net", kind="image", options={"filters": 16})
    def build_my_net(input_height, input_width, input_channels, n_classes, *, filters):
        ...  # -> keras.Model, (B, H, W, C) -> (B, H, W, n_classes)

    @zoo.register_loss("my_loss", params={"smooth": 1.0})
    def my_loss(smooth=1.0):
        ...  # -> keras.losses.Loss

Two ways to load them, both before the spec is validated, in the driver and in every
trial's worker (``bench.run.trial.run`` imports them first):

- the spec's ``plugins: [my_package.extra_models]`` (module names, importable where the
  sweep runs: on ``PYTHONPATH`` locally, shipped with Ray's ``runtime_env`` on a cluster);
- the entry-point group ``zoobench.plugins`` of installed packages
  (``[project.entry-points."zoobench.plugins"] extra = "my_package.extra_models"``); an
  entry point naming a function (``module:function``) has the function called.
"""

from __future__ import annotations

import importlib
import importlib.util
import site
import socket
import sysconfig
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from bench.common.errors import UsageError

ENTRY_POINT_GROUP = "zoobench.plugins"

_loaded_entry_points: set[str] = set()  # entry point values already loaded in this process


def _why(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def import_plugin(module: str, where: str = "plugins") -> ModuleType:
    """Import the plugin module ``module`` (its registrations run once per process).

    Raises:
        UsageError: one line naming ``where`` and the module, when it cannot be imported
            (not found, or its own code raised).
    """
    try:
        return importlib.import_module(module)
    except Exception as error:  # noqa: BLE001  (whatever the plugin's own code raises)
        raise UsageError(f"{where}: cannot import plugin module {module!r} "
                         f"({_why(error)})") from None


def load_entry_points() -> list[str]:
    """Load every entry point of the group ``zoobench.plugins``; the values loaded now.

    A value naming a module imports it; one naming a callable (``module:function``) has it
    called with no arguments. Each is loaded once per process.

    Raises:
        UsageError: one line naming the entry point and its package when it fails.
    """
    loaded = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.value in _loaded_entry_points:
            continue
        where = f"entry point {point.name!r} ({ENTRY_POINT_GROUP})"
        try:
            target = point.load()
            if callable(target) and not isinstance(target, ModuleType):
                target()
        except Exception as error:  # noqa: BLE001  (whatever the plugin's own code raises)
            raise UsageError(f"{where}: cannot load plugin {point.value!r} "
                             f"({_why(error)})") from None
        _loaded_entry_points.add(point.value)
        loaded.append(point.value)
    return loaded


def import_plugins(modules: Sequence[str] = (), where: str = "plugins") -> None:
    """Load the installed entry-point plugins, then import ``modules`` (the spec's list).

    ``where`` prefixes the error message, e.g. ``spec.yaml: plugins[1]`` is built from
    ``spec.yaml: plugins``.

    Raises:
        UsageError: the first plugin that cannot be loaded, in one line.
    """
    load_entry_points()
    for i, module in enumerate(modules):
        import_plugin(module, f"{where}[{i}]")


def import_plugins_on_worker(modules: Sequence[str]) -> None:
    """:func:`import_plugins` in a trial's worker; a failure is an ``ImportError`` (the
    trial's error) saying on which host, and how to make the module importable there."""
    try:
        import_plugins(modules, "plugins")
    except UsageError as error:
        raise ImportError(f"{error} on the worker at {socket.gethostname()}: make it "
                          f"importable on every node (install it, or ship it with Ray's "
                          f"runtime_env py_modules or working_dir)") from None


def _installed_roots() -> list[Path]:
    """Where installed packages and the standard library live: modules under these are
    expected on every node (the image), the rest is the user's own code."""
    roots = [*site.getsitepackages(), site.getusersitepackages()]
    roots += [sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    return [Path(root).resolve() for root in roots if root]


def modules_to_ship(modules: Sequence[str]) -> list[str]:
    """Local paths of the plugin modules that a cluster's other nodes cannot import by
    themselves: for each module, its top-level package's folder (or its ``.py`` file),
    unless it is installed (site-packages, the standard library) or is zoobench itself.

    ``bench.run.sweep`` hands these to Ray as ``runtime_env={"py_modules": [...]}`` when it
    joins a cluster, so a plugin on the driver's ``PYTHONPATH`` reaches every worker.
    Call after :func:`import_plugins` (the modules are known to import).
    """
    installed = _installed_roots()
    paths: list[str] = []
    for module in modules:
        top = module.split(".")[0]
        if top in ("zoo", "bench"):
            continue
        found = importlib.util.find_spec(top)
        if found is None:
            continue
        if found.submodule_search_locations:  # a package: ship its folder
            path = Path(next(iter(found.submodule_search_locations)))
        elif found.origin and found.origin.endswith(".py"):
            path = Path(found.origin)
        else:  # built-in or compiled: cannot be shipped as source
            continue
        path = path.resolve()
        if any(path.is_relative_to(root) for root in installed) or str(path) in paths:
            continue
        paths.append(str(path))
    return paths
