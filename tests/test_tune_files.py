"""Tune's own per-trial logger files are left out of a sweep (bench.run.tune_files); the
user's own setting of Tune's variable wins, and the variable is put back afterwards."""

from __future__ import annotations

import logging
import os

import pytest

from bench.run.tune_files import VARIABLE, without_tune_files

ANALYSIS_LOG = "ray.tune.analysis.experiment_analysis"
MISSING = "Failed to fetch metrics for 2 trial(s):\n- t1: FileNotFoundError(...)"


class _Kept(logging.Handler):
    """Keeps the messages that reach it. On the logger itself, not the root's (pytest's
    caplog): once Ray is imported its ``ray`` logger does not propagate."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def analysis_log():
    logger, kept = logging.getLogger(ANALYSIS_LOG), _Kept()
    level = logger.level
    logger.addHandler(kept)
    logger.setLevel(logging.WARNING)
    yield logger, kept.messages
    logger.removeHandler(kept)
    logger.setLevel(level)


def test_left_out_within_the_block_and_put_back_after(monkeypatch, analysis_log):
    logger, messages = analysis_log
    monkeypatch.delenv(VARIABLE, raising=False)
    with without_tune_files() as left_out:
        assert left_out is True
        assert os.environ[VARIABLE] == "1"
        logger.warning(MISSING)
        logger.warning("another warning")
    assert messages == ["another warning"]  # only Tune's missing-files warning is dropped
    assert VARIABLE not in os.environ
    logger.warning(MISSING)  # after the block: Tune's own again
    assert messages == ["another warning", MISSING]


@pytest.mark.parametrize("setting", ["0", "1"])
def test_the_users_setting_wins(monkeypatch, analysis_log, setting):
    logger, messages = analysis_log
    monkeypatch.setenv(VARIABLE, setting)
    with without_tune_files() as left_out:
        assert left_out is (setting == "1")
        assert os.environ[VARIABLE] == setting
        logger.warning(MISSING)
    assert os.environ[VARIABLE] == setting
    # Tune's files are written when the user asked for them: its warning then means something
    assert messages == ([MISSING] if setting == "0" else [])
