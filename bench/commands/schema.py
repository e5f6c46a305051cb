"""``zoobench schema``: the sweep spec's JSON Schema, for editors and the documentation.

The typed keys (``bench.spec.model.SpecKeys``) give the schema; the registries fill in what
they hold: each dataset's name and options, each model's options, each loss's parameters,
including those of plugins (``--plugins``, a spec's ``plugins:``, installed entry points).
An editor with the YAML language server (VS Code's YAML extension, ...) completes and
checks a spec that starts with ``# yaml-language-server: $schema=PATH-OR-URL``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from bench.commands.base import command
from bench.common.errors import UsageError

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _value(default: Any, typed: bool = True) -> dict[str, Any]:
    """The schema of an option whose default is ``default`` (its type, when ``typed``)."""
    kinds = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
             ((list, tuple), "array"))
    kind = next((name for types, name in kinds if isinstance(default, types)), None)
    schema: dict[str, Any] = {"type": kind} if typed and kind else {}
    if default is not None:
        schema["default"] = list(default) if isinstance(default, tuple) else default
    return schema


def _options(options: dict[str, Any], help_lines: dict[str, str] | None = None,
             typed: bool = True) -> dict[str, Any]:
    return {name: {**_value(default, typed), **({"description": help_lines[name]}
                                                if help_lines and help_lines.get(name) else {})}
            for name, default in options.items()}


def _components(entries: list[tuple[str, str, dict[str, Any]]], what: str) -> dict[str, Any]:
    """``[name, {name: {option: value}}]`` over ``(name, summary, option schemas)``."""
    names = {"enum": [name for name, _, _ in entries]}
    given = {"type": "object", "minProperties": 1, "maxProperties": 1,
             "additionalProperties": False,
             "properties": {name: {"type": ["object", "null"], "description": summary,
                                   "properties": options, "additionalProperties": False}
                            for name, summary, options in entries}}
    item = {"anyOf": [names, given]}
    return {"description": f"{what}: names, or {{name: {{option: value}}}}",
            "anyOf": [names, {"type": "array", "minItems": 1, "items": item}]}


def spec_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12) with the registries' names and options."""
    import zoo
    from bench.spec.model import SpecKeys
    from zoo.losses import LOSSES

    schema = {"$schema": DRAFT, **SpecKeys.model_json_schema()}
    datasets = []
    for name in zoo.datasets.list_datasets():
        described = zoo.datasets.describe_dataset(name)
        datasets.append({"type": "object", "title": name, "description": described.summary,
                         "required": ["name"], "additionalProperties": False,
                         "properties": {"name": {"const": name},
                                        **_options(described.options, described.option_help)}})
    one = {"anyOf": [{"enum": zoo.datasets.list_datasets()}, *datasets]}
    properties = schema["properties"]
    properties["dataset"] = {"description": properties["dataset"]["description"], **one}
    properties["datasets"] = {"description": properties["datasets"]["description"],
                              "type": "array", "minItems": 1, "items": one}
    models = [(name, zoo.describe_model(name).summary, _options(zoo.describe_model(name).options))
              for name in zoo.list_models()]
    # A loss's parameters are not typed by its registry (focal's alpha: a number or a list).
    losses = [(entry.name, entry.summary, _options(entry.meta.get("params", {}), typed=False))
              for entry in LOSSES]
    properties["models"] = _components(models, "models")
    properties["losses"] = _components(losses, "losses")
    return schema


def _spec_plugins(path: Path) -> list[str]:
    """The ``plugins:`` of the spec at ``path`` (the rest of it is not checked here)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UsageError(f"{path}: cannot read ({str(error).splitlines()[0]})") from None
    plugins = raw.get("plugins") if isinstance(raw, dict) else None
    return [plugins] if isinstance(plugins, str) else list(plugins or [])


@command("schema", help="print the spec's JSON Schema (for editor completion and checks)")
class Schema:
    """``zoobench schema [SPEC] [--plugins MODULE ...]``."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("spec", nargs="?", type=Path,
                            help="a spec whose plugins' models, losses and datasets to include")
        parser.add_argument("--plugins", nargs="+", default=[], metavar="MODULE",
                            help="plugin modules to import first (their names join the enums)")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from bench.spec.plugins import import_plugins

        modules = [*args.plugins, *(_spec_plugins(args.spec) if args.spec else [])]
        import_plugins(modules, "--plugins")
        json.dump(spec_schema(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
