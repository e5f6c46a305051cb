"""Tune's own per-trial logger files are left out of a sweep (bench.run.tune_files); the
user's own setting of Tune's variable wins, and the variable is put back afterwards."""

from __future__ import annotations

import logging
import os

import pytest

from bench.run.tune_files import VARIABLE, without_tune_files

ANALYSIS_LOG = "ray.tune.analysis.experiment_analysis"
MISSING = "Failed to fetch metrics for 2 trial(s):\n- t1: FileNotFoundError(...)"


def test_left_out_within_the_block_and_put_back_after(monkeypatch, caplog):
    monkeypatch.delenv(VARIABLE, raising=False)
    with without_tune_files() as left_out:
        assert left_out is True
        assert os.environ[VARIABLE] == "1"
        with caplog.at_level(logging.WARNING, logger=ANALYSIS_LOG):
            logging.getLogger(ANALYSIS_LOG).warning(MISSING)
            logging.getLogger(ANALYSIS_LOG).warning("another warning")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["another warning"]  # only Tune's missing-files warning is dropped
    assert VARIABLE not in os.environ
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=ANALYSIS_LOG):
        logging.getLogger(ANALYSIS_LOG).warning(MISSING)  # after the block: Tune's own
    assert [record.getMessage() for record in caplog.records] == [MISSING]


@pytest.mark.parametrize("setting", ["0", "1"])
def test_the_users_setting_wins(monkeypatch, caplog, setting):
    monkeypatch.setenv(VARIABLE, setting)
    with without_tune_files() as left_out:
        assert left_out is (setting == "1")
        assert os.environ[VARIABLE] == setting
        with caplog.at_level(logging.WARNING, logger=ANALYSIS_LOG):
            logging.getLogger(ANALYSIS_LOG).warning(MISSING)
    assert os.environ[VARIABLE] == setting
    # Tune's files are written when the user asked for them: its warning then means something
    assert len(caplog.records) == (1 if setting == "0" else 0)
