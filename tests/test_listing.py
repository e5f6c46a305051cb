"""``zoobench models|losses|datasets`` without TensorFlow, wrapped to the terminal (issue 30).

The built-in entries come from ``zoo/catalog.json``; ``tests/test_registry.py`` checks that
file against the live registries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.commands.listing import losses_rows, models_rows, render_rows, wrapped_table

REPO = Path(__file__).resolve().parents[1]

# Runs one listing in this fresh interpreter, then says what it imported.
PROBE = """\
import contextlib, io, json, sys, time
start = time.perf_counter()
from bench.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = main([{command!r}, "--format", "json"])
print(json.dumps({{"status": status, "rows": json.loads(out.getvalue()),
                  "seconds": time.perf_counter() - start,
                  "heavy": sorted(m for m in ("tensorflow", "keras", "zoo") if m in sys.modules)}}))
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **env}
    environment.pop("COLUMNS", None)
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, cwd=REPO, timeout=120, check=False)


@pytest.mark.parametrize(("command", "first", "count"), [
    ("models", "testnet", 10), ("losses", "categorical_crossentropy", 7),
    ("datasets", "digits", 5)])
def test_listings_import_no_tensorflow(command, first, count):
    done = _python(PROBE.format(command=command))
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["status"] == 0
    assert probe["heavy"] == []  # neither TensorFlow nor Keras, nor zoo's __init__
    assert probe["rows"][0]["name"] == first and len(probe["rows"]) == count
    print(f"{command}: {probe['seconds']:.2f} s in the process")  # the machine is shared


def test_losses_json_gives_parameters_as_objects(capsys):
    from tests.conftest import run_cli

    assert run_cli("losses", "--format", "json") == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["focal"]["params"] == {"gamma": 2.0, "alpha": 0.25}
    assert rows["dice"]["params"] == {"weights": None, "smooth": 1.0}
    assert rows["categorical_crossentropy"]["params"] == {}


def test_wrapped_table_by_hand():
    rows = [{"name": "a", "params": "x=1, y=2", "summary": "one two three"},
            {"name": "bb", "params": "-", "summary": "four"}]
    # Fits in 40: one line per row.
    assert wrapped_table(rows, 40) == (
        "name  params    summary\n"
        "----  --------  -------------\n"
        "a     x=1, y=2  one two three\n"
        "bb    -         four\n")
    # 24 columns: 29 wanted. Each column keeps its longest word (params 6, summary 7), and
    # the 3 left over go by what each lacks (2 and 6 of 8): params 6 + 0, summary 7 + 2.
    assert wrapped_table(rows, 24) == (
        "name  params  summary\n"
        "----  ------  ---------\n"
        "a     x=1,    one two\n"
        "      y=2     three\n"
        "bb    -       four\n")
    # Too narrow for the longest words: short columns on the line, the rest below.
    assert wrapped_table(rows, 12) == (
        "name\n"
        "----\n"
        "a\n"
        "    params:\n"
        "      x=1,\n"
        "      y=2\n"
        "    one two\n"
        "      three\n"
        "bb\n"
        "    params:\n"
        "      -\n"
        "    four\n")


@pytest.mark.parametrize("width", [60, 100, 160])
def test_a_terminal_gets_lines_no_wider_than_it(width):
    done = subprocess.run([sys.executable, "-m", "bench", "models"], capture_output=True,
                          text=True, timeout=120, cwd=REPO, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": str(width)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= width
    assert _summaries(lines) == [" ".join(r["summary"].split()) for r in models_rows()]


def _summaries(lines: list[str]) -> list[str]:
    """Each entry's summary, read back from a wrapped table: the summary column's slice of
    the entry's lines (a table), or its unlabelled indented paragraph (stacked rows)."""
    header, dashes = lines[0], lines[1]
    spans, at = {}, 0
    for name, dash in zip(header.split(), dashes.split(), strict=True):
        at = dashes.index(dash, at)
        spans[name] = (at, at + len(dash))
        at += len(dash)
    entries: list[list[str]] = []
    in_summary = False
    for line in lines[2:]:
        if line and not line[0].isspace():
            entries.append([])
        if "summary" in spans:
            entries[-1].append(line[slice(*spans["summary"])])
            continue
        if not line.startswith("      "):  # a new paragraph: labelled, or the summary
            in_summary = line.startswith("    ") and ":" not in line.split()[0]
        if in_summary:
            entries[-1].append(line)
    return [" ".join(" ".join(entry).split()) for entry in entries]


def test_piped_output_keeps_one_line_per_entry():
    text = render_rows(losses_rows(), "table", None)
    lines = text.splitlines()
    assert len(lines) == 2 + len(losses_rows())
    assert "gamma=2.0, alpha=0.25" in next(line for line in lines if line.startswith("focal "))


PLUGIN = '''\
import keras
import zoo


@zoo.register_model("listed_plugin_net", kind="image", divisor=4, options={"filters": 4})
def build(input_height, input_width, input_channels, n_classes, *, filters):
    """A plugin's model, listed when asked for."""
    inputs = keras.Input((input_height, input_width, input_channels))
    return keras.Model(inputs, keras.layers.Conv2D(n_classes, 1)(inputs))
'''


def test_a_plugin_module_is_listed_when_asked(tmp_path):
    (tmp_path / "listed_plugin.py").write_text(PLUGIN)
    done = subprocess.run([sys.executable, "-m", "bench", "models", "--plugin", "listed_plugin",
                           "--format", "json"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, check=False,
                          env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"})
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["listed_plugin_net"] == {
        "name": "listed_plugin_net", "kind": "image", "task": "segmentation",
        "size": "multiple of 4, at least 4", "options": {"filters": 4},
        "summary": "A plugin's model, listed when asked for."}
    assert list(rows)[:2] == ["testnet", "unet"]  # the built-in ones first
    assert "oneDNN" not in done.stderr and "absl" not in done.stderr
