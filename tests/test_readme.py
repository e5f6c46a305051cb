"""Every code block of the README and of the guide (``docs/*.md``) runs as written (issue 14:
examples must not rot; issue 27: the guide's too).

Python blocks run as scripts; YAML blocks are specs (a fragment is checked inside the embedded
default spec); a bash block is either one these tests or ``.ci/run`` run, or is marked
``<!-- readme-test: skip (reason) -->`` on the line before its fence (it needs a cluster,
Docker, a GPU, or is a measurement taking minutes to hours).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.run.progress import log_path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
TEXTS = {page.relative_to(ROOT).as_posix(): page.read_text(encoding="utf-8") for page in PAGES}
TEXT = "\n".join(TEXTS.values())
SKIP_MARK = re.compile(r"<!--\s*readme-test:\s*skip\b")


def _blocks(language: str) -> list[tuple[str, str, str]]:
    """``(page, block, the line before its fence)`` of every ``language`` block, in order."""
    return [(page, match.group(1), text[:match.start()].rstrip().rsplit("\n", 1)[-1])
            for page, text in TEXTS.items()
            for match in re.finditer(rf"```{language}\n(.*?)```", text, re.S)]


PYTHON = [(page, block) for page, block, before in _blocks("python")
          if not SKIP_MARK.search(before)]
BLOCKS = [block for _, block in PYTHON]
BASH = [(block, before) for _, block, before in _blocks("bash")]


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)),
                         ids=[f"{page}:{i}" for i, (page, _) in enumerate(PYTHON)])
def test_readme_python_example_runs(index, tmp_path):
    # Each block runs on its own, in a fresh folder (examples write model files) and a fresh
    # process (an example that registers a plugin model must not leak into other tests).
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(BLOCKS[index], encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_zoobench_env(),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def _quickstart() -> str:
    """The quickstart's command line without its ``pip install ... &&`` (CI installs first)."""
    (line,) = [block.strip() for block, _ in BASH
               if "zoobench sweep && zoobench leaderboard" in block]
    return re.sub(r"^pip install [^&]*&&\s*", "", line)


def _zoobench_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    # ``zoobench`` is the installed entry point; ``python -m bench`` is the same command and
    # runs this checkout even where the package is not installed.
    return env


def _as_module(command: str) -> str:
    return re.sub(r"\bzoobench\b", f"{shlex.quote(sys.executable)} -m bench", command)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """The quickstart run once in a fresh folder: each command of its ``&&`` chain in turn,
    stopping at the first that fails, as the shell would; their outputs kept apart."""
    command = _quickstart()
    assert command == "zoobench sweep && zoobench leaderboard && zoobench report"
    folder = tmp_path_factory.mktemp("quickstart")
    runs = []
    for part in command.split(" && "):
        done = subprocess.run(_as_module(part), shell=True, cwd=folder, env=_zoobench_env(),
                              capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, f"{part}: " + (done.stdout + done.stderr)[-4000:]
        runs.append(done)
    return folder, runs


def test_quickstart_runs_as_written(quickstart):
    """``zoobench sweep && zoobench leaderboard && zoobench report`` in a fresh folder."""
    folder, (_, board, _) = quickstart
    results = folder / "results"
    assert (results / "trials.parquet" / "sweep=smoke").is_dir()
    assert (results / "leaderboard.parquet" / "sweep=smoke").is_dir()
    report = results / "report-smoke.html"  # zoobench report's default name
    assert report.stat().st_size > 10_000
    assert "testnet" in board.stdout and "unet_shallow" in board.stdout


def test_quickstart_console_is_short_and_tune_lines_go_to_the_log(quickstart):
    """The quickstart's sweep prints zoobench's progress lines, not Tune's (issue 12)."""
    folder, (sweep, board, report) = quickstart
    console = sweep.stdout.splitlines() + sweep.stderr.splitlines()
    assert len(console) < 40, "\n".join(console)
    everything = console + [line for done in (board, report)
                            for line in done.stdout.splitlines() + done.stderr.splitlines()]
    assert len(everything) < 60, "\n".join(everything)
    text = "\n".join(console)
    assert text.count("] started   ") == 4
    assert text.count("] finished  ") == 4
    assert "4/4 done, 0 running, 0 pending, 0 failed; best val_mean_iou" in text
    assert "Checkpoint successfully created" not in text
    assert "Trial status" not in text and "Current time" not in text
    # Start-up notes a user does not act on (a local Ray's token auth, its start, MLflow
    # making its sqlite tables) stay off the console; --verbose shows them.
    for note in ("Token authentication", "Started a local Ray instance",
                 "Creating initial MLflow database tables", "Updating database tables"):
        assert note not in text, note
    assert "workflowType=machine_learning" in sweep.stdout  # the MLflow UI link
    log = log_path(folder / "results", "smoke").read_text()
    assert "Current time" in log or "Trial status" in log or "== Status ==" in log


@pytest.mark.parametrize("command", [
    "zoobench sweep --print-spec", "zoobench models", "zoobench losses --format csv",
    "zoobench datasets --format markdown", "zoobench models --format json",
])
def test_readme_listing_commands_run(command, tmp_path):
    # The command is shown in the README or a docs/ page, and so is each of its options with
    # its value (``--format csv``, or a ``--format table|csv|...`` list naming it).
    pages = "\n".join(page.read_text(encoding="utf-8") for page in _doc_pages())
    assert _documented(command, pages), command
    done = subprocess.run(_as_module(command), shell=True, cwd=tmp_path, env=_zoobench_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()


def _documented(command: str, text: str) -> bool:
    """Whether ``text`` shows the ``zoobench`` ``command`` (``zoobench NAME``, or NAME in the
    ``zoobench models | losses | datasets`` form) and every option of it: ``--flag`` in
    ``zoobench NAME --flag``, ``--option value`` as such or with ``value`` among the
    ``--option a|b|c`` alternatives."""
    name, *options = command.split(" --")
    words = name.split()
    if not (re.search(rf"{re.escape(name)}(?![\w-])", text) or _listed(words[1], text)):
        return False
    for option in options:
        flag, _, value = option.partition(" ")
        if not value:
            if f"{name} --{flag}" not in text:
                return False
            continue
        shown = rf"--{re.escape(flag)}[ =](?:[\w-]+\|)*{re.escape(value)}(?![\w-])"
        if not re.search(shown, text):
            return False
    return True


def test_documented_needs_the_options_too():
    """The check above can fail: an option or a value the pages never show is refused."""
    text = ("`zoobench models | losses | datasets` (`--format table|csv|json`)\n"
            "zoobench sweep --print-spec\n")
    assert _documented("zoobench losses --format csv", text)
    assert _documented("zoobench sweep --print-spec", text)
    assert not _documented("zoobench losses --format markdown", text)  # value not listed
    assert not _documented("zoobench sweep --verbose", text)  # flag never shown
    assert not _documented("zoobench report", text)  # command never shown


def _listed(name: str, text: str) -> bool:
    """Whether ``text`` shows ``zoobench NAME`` or the README's ``zoobench models | losses |
    datasets`` form naming it."""
    return any(name in re.split(r"\s*\|\s*", m) for m in
               re.findall(r"`zoobench ((?:[a-z]+ \| )+[a-z]+)`", text))


def test_print_spec_is_the_quickstarts_valid_spec(tmp_path):
    from bench.spec.model import DEFAULT_SPEC, parse_spec

    spec = parse_spec(DEFAULT_SPEC)
    assert spec.name == "smoke" and spec.epochs == 2


YAML = [(page, block) for page, block, before in _blocks("yaml")
        if not SKIP_MARK.search(before)]


@pytest.mark.parametrize(("page", "block"), YAML, ids=[f"{p}:{i}" for i, (p, _) in enumerate(YAML)])
def test_yaml_blocks_are_valid_specs(page, block):
    """A full spec (it names models) as it is; a fragment inside the embedded default spec,
    its keys replacing the default's (the stages' keys leave with a protocol)."""
    from bench.spec.model import DEFAULT_SPEC, parse_spec

    given = yaml.safe_load(block)
    if "models" not in given:
        spec = yaml.safe_load(DEFAULT_SPEC)
        if "datasets" in given:
            spec.pop("dataset")
        if "protocol" in given:
            for key in ("samples", "seeds", "scheduler"):
                spec.pop(key)
        block = yaml.safe_dump({**spec, **given})
    assert parse_spec(block, page).name


def test_every_bash_block_is_run_or_says_why_not():
    """The quickstart and the listing commands run above; the test command is ``.ci/run``'s
    (kept the same, as its comment asks); any other block carries a skip mark."""
    ci = (ROOT / ".ci" / "run").read_text().replace("pip install -q ", "pip install ")
    for block, before in BASH:
        command = block.strip()
        if SKIP_MARK.search(before):
            continue
        assert "zoobench sweep && zoobench leaderboard" in command or command in ci, command


def _doc_pages() -> list[Path]:
    """The README and every page of the guide under ``docs/``."""
    return [README, *sorted((README.parent / "docs").glob("*.md"))]


def _bash_blocks(text: str) -> list[tuple[str, str]]:
    """Each ```bash block of ``text`` and the line just before it (where a skip marker sits)."""
    return [(m.group(1), text[:m.start()].rstrip().rsplit("\n", 1)[-1])
            for m in re.finditer(r"```bash\n(.*?)```", text, re.S)]


def _zoobench_commands(block: str) -> list[list[str]]:
    """Every ``zoobench ...`` command line of a bash block, as its words after ``zoobench``
    (continuation lines joined; ``&&``, ``||``, ``|`` and ``;`` end a command)."""
    joined = re.sub(r"\\\n", " ", block)
    found = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0]
        for part in re.split(r"&&|\|\||\||;", line):
            if not re.search(r"\bzoobench\b", part):
                continue
            try:
                words = shlex.split(part, comments=True)
            except ValueError:  # a quote opened in another part of a pipeline
                words = part.split()
            if "zoobench" in words:
                found.append(words[words.index("zoobench") + 1:])
    return found


def doc_problems(text: str, page: str = "README.md") -> list[str]:
    """What is wrong in a page's bash blocks: a skip marker without its reason, a
    ``zoobench`` subcommand the CLI does not have, or an option its subcommand does not
    take. Empty for a good page."""
    import argparse

    from bench.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    problems = []
    for block, before in _bash_blocks(text):
        if SKIP_MARK.search(before):
            if not re.search(r"skip\s*\(.+\)", before):
                problems.append(f"{page}: a skip marker gives no reason: {before}")
            continue
        for words in _zoobench_commands(block):
            if not words or words[0].startswith("-"):
                continue  # `zoobench --help`
            name = words[0]
            if name not in sub.choices:
                problems.append(f"{page}: no zoobench command {name!r}")
                continue
            options = set(sub.choices[name]._option_string_actions)
            problems += [f"{page}: zoobench {name} has no option {w.split('=')[0]}"
                         for w in words[1:] if w.startswith("--")
                         and w.split("=")[0] not in options]
    return problems


def test_doc_problems_finds_each_kind_of_error():
    """The check below can fail: each kind of mistake in a made-up page is reported."""
    bad = ("<!-- readme-test: skip -->\n```bash\nzoobench sweep --cluster\n```\n"
           "```bash\nzoobench sweeep && zoobench leaderboard --acros \\\n  --sweep x\n```\n"
           "```bash\nzoobench sweep --results r --no-such-flag=1  # a comment\n```\n")
    assert doc_problems(bad, "bad.md") == [
        "bad.md: a skip marker gives no reason: <!-- readme-test: skip -->",
        "bad.md: no zoobench command 'sweeep'",
        "bad.md: zoobench leaderboard has no option --acros",
        "bad.md: zoobench sweep has no option --no-such-flag",
    ]
    good = ("<!-- readme-test: skip (needs a cluster) -->\n```bash\nzoobench sweep --bogus\n```"
            "\n```bash\nzoobench leaderboard --across --format json | head\n```\n")
    assert doc_problems(good, "good.md") == []


@pytest.mark.parametrize("page", _doc_pages(), ids=lambda p: p.name)
def test_doc_pages_bash_blocks_name_real_commands_and_skips_say_why(page):
    """Every bash block of the README and of docs/*.md: a skipped block says why, and each
    ``zoobench`` command in it is one the CLI has, with options it takes."""
    text = page.read_text(encoding="utf-8")
    assert doc_problems(text, page.name) == []
    if page == README:
        assert any(_zoobench_commands(block) for block, _ in _bash_blocks(text))
