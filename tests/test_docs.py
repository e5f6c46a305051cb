"""The guide (issue 27): ``mkdocs build --strict`` is green, its reference pages are generated
from the code, and the README stays short. Its code blocks run in ``tests/test_readme.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built once with ``--strict``: a broken link or a missing nav page fails it."""
    pytest.importorskip("mkdocs", reason="mkdocs is in the test extra: pip install -e .[test]")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3",
               NO_MKDOCS_2_WARNING="1")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                           str(ROOT / "mkdocs.yml"), "-d", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return out


def test_the_spec_reference_is_generated_from_the_schema(site):
    from bench.spec.model import SpecKeys

    page = (site / "spec" / "index.html").read_text()
    for key in SpecKeys.model_fields:  # every top-level key has its row
        assert f"<code>{key}</code>" in page, key
    assert "seeds the search: the same spec draws the same params" in page  # a docstring
    assert (site / "spec.schema.json").stat().st_size > 10_000  # editors can point at it


def test_the_zoo_reference_is_generated_from_the_registries(site):
    # The built-in entries (the catalog, which tests/test_registry.py holds equal to the live
    # registries): a plugin another test registered in this process is not in the docs build.
    from bench.common.zoo_catalog import zoo_catalog

    page = (site / "zoo" / "index.html").read_text()
    catalog = zoo_catalog()
    names = [*catalog["models"], *catalog["losses"], *catalog["datasets"]]
    assert len(names) >= 10 + 7 + 5
    for name in names:
        assert f"{name}" in page, name
    assert "directory with images/ and masks/" in page  # the folder dataset's path help


def test_every_measurement_page_says_how_to_reproduce_it(site):
    for page in ("throughput", "overhead", "ladder", "next-frames"):
        text = (ROOT / "docs" / f"{page}.md").read_text()
        assert "python tests/perf/" in text.split("```bash", 1)[1].split("```", 1)[0], page
        assert (site / page / "index.html").exists()


def test_the_readme_reads_in_five_minutes():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, len(lines)
