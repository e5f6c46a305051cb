"""``bench.common.environment.variable_set``: set for a block, then exactly as before."""

from __future__ import annotations

import os

import pytest

from bench.common.environment import variable_set

NAME = "ZOOBENCH_TEST_ENVIRONMENT_VARIABLE"


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NAME, raising=False)


def test_an_unset_variable_is_set_within_and_unset_after() -> None:
    with variable_set(NAME, "1") as value:
        assert value == "1"
        assert os.environ[NAME] == "1"
    assert NAME not in os.environ


def test_a_set_variable_is_overridden_within_and_restored_after(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "users")
    with variable_set(NAME, "1") as value:
        assert value == "1"
        assert os.environ[NAME] == "1"
    assert os.environ[NAME] == "users"


@pytest.mark.parametrize("users", ["0", "1", ""])
def test_without_override_the_users_setting_wins(monkeypatch: pytest.MonkeyPatch,
                                                 users: str) -> None:
    monkeypatch.setenv(NAME, users)
    with variable_set(NAME, "1", override=False) as value:
        assert value == users
        assert os.environ[NAME] == users
    assert os.environ[NAME] == users


def test_without_override_an_unset_variable_is_set_and_unset_after() -> None:
    with variable_set(NAME, "1", override=False) as value:
        assert value == "1"
    assert NAME not in os.environ


def test_the_variable_is_put_back_when_the_block_raises(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyError), variable_set(NAME, "1"):
        raise KeyError("in the block")
    assert NAME not in os.environ
    monkeypatch.setenv(NAME, "before")
    with pytest.raises(KeyError), variable_set(NAME, "1"):
        raise KeyError("in the block")
    assert os.environ[NAME] == "before"
