"""mkdocs hook: the reference pages, generated in every build from the code.

A page holding ``<!-- generated: spec-reference -->`` gets the spec's keys from its JSON
Schema (``bench.commands.schema.spec_schema``); one holding ``<!-- generated:
zoo-reference -->`` gets the models, losses and datasets from the registries (the tables of
``zoobench models | losses | datasets``). Nothing is copied by hand, so nothing goes stale.
"""

from __future__ import annotations

import json
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the registries import TensorFlow
SPEC, ZOO = "<!-- generated: spec-reference -->", "<!-- generated: zoo-reference -->"


def _type(schema: dict[str, Any]) -> str:
    """A property's type in words: ``integer >= 1``, ``fifo | asha``, ``Params``, ..."""
    if "$ref" in schema:
        return f"[{schema['$ref'].rsplit('/', 1)[-1].strip('_')}](#{_anchor(schema['$ref'])})"
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "anyOf" in schema:  # each kind once: the datasets' option mappings are "mapping"
        return " or ".join(dict.fromkeys(_type(option) for option in schema["anyOf"]))
    bounds = [f"{word} {schema[key]}" for key, word in (
        ("minimum", ">="), ("exclusiveMinimum", ">"), ("minItems", "items >="))
        if key in schema]
    kind = schema.get("type", "any")
    if kind == "object":
        return "mapping"
    if kind == "array" and "items" in schema:
        kind = f"list of {_type(schema['items'])}"
    return " ".join([kind if isinstance(kind, str) else " or ".join(kind), *bounds])


def _anchor(ref: str) -> str:
    return ref.rsplit("/", 1)[-1].strip("_").lower()


def _table(schema: dict[str, Any]) -> list[str]:
    rows = ["| key | type | default | what |", "|---|---|---|---|"]
    for key, prop in schema.get("properties", {}).items():
        default = f"`{json.dumps(prop['default'])}`" if "default" in prop else (
            "required" if key in schema.get("required", ()) else "")
        what = prop.get("description", "").replace("\n", " ").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type(prop)} | {default} | {what} |")
    return rows


def spec_reference() -> str:
    """Markdown: the spec's keys, then each nested mapping's, from the JSON Schema."""
    from bench.commands.schema import spec_schema

    schema = spec_schema()
    out = ["Generated from `zoobench schema` at build time. `dataset`, `models` and `losses` "
           "take the names and options of the [zoo](zoo.md#reference).", "",
           *_table(schema)]
    for name, nested in schema.get("$defs", {}).items():
        out += ["", f"### {name.strip('_')} {{#{name.strip('_').lower()}}}", "",
                nested.get("description", ""), "", *_table(nested)]
    return "\n".join(out)


def zoo_reference() -> str:
    """Markdown: the registries' models, losses and datasets (with each option's help)."""
    import zoo
    from bench.commands.leaderboard import render
    from bench.commands.listing import losses_table, models_table

    out = ["Generated from the registries at build time (`zoobench models | losses | "
           "datasets`; a plugin's entries are listed by the same commands).", "",
           "### Models", "", render(models_table(), "markdown"),
           "### Losses", "", render(losses_table(), "markdown"), "### Datasets", ""]
    for name in zoo.datasets.list_datasets():
        described = zoo.datasets.describe_dataset(name)
        out += [f"#### `{name}` ({described.kind})", "", described.summary, "",
                "| option | default | what |", "|---|---|---|",
                *(f"| `{option}` | `{default}` | {described.option_help.get(option, '')} |"
                  for option, default in described.options.items()), ""]
    return "\n".join(out)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Fill in the generated sections of a page."""
    if SPEC in markdown:
        markdown = markdown.replace(SPEC, spec_reference())
    if ZOO in markdown:
        markdown = markdown.replace(ZOO, zoo_reference())
    return markdown
