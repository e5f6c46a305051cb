"""One Tune experiment at a time: the sweep's lock is held under ``--storage`` as well as
under ``--results``, so two results folders on one storage cannot run the same sweep."""

from __future__ import annotations

import os

import pytest

from bench.common.errors import UsageError
from bench.spec import guards
from tests.conftest import run_cli
from tests.test_resume import _write_spec


def test_two_results_folders_on_one_storage_run_one_sweep_at_a_time(tmp_path, capsys):
    storage = tmp_path / "shared-storage"
    spec = _write_spec(tmp_path, "twice", losses="[dice]", epochs=1,
                       params="{batch_size: 8, lr: 1.0e-3}")
    with guards.sweep_locks(tmp_path / "results-a", str(storage), "twice"):
        code = run_cli("sweep", str(spec), "--results", str(tmp_path / "results-b"),
                       "--storage", str(storage))
        err = capsys.readouterr().err
    assert code == 2
    lock = storage / guards.STORAGE_LOCKS / "twice.lock"
    assert "sweep 'twice' is already running (host " in err and f"pid {os.getpid()}" in err
    assert f"lock {lock.resolve()}" in err or f"lock {lock}" in err
    assert err.count("\n") == 1  # one line
    assert not (tmp_path / "results-b" / "trials.parquet").exists()
    assert not (storage / "twice").exists()  # Tune never started


def test_storage_lock_is_hidden_from_sweep_names_and_released(tmp_path):
    storage = tmp_path / "s"
    with guards.sweep_locks(tmp_path / "r1", str(storage), "locks"):
        # A sweep named like the results folder's lock folder does not meet the storage lock.
        assert (storage / ".zoobench-locks" / "locks.lock").is_file()
        assert not (storage / "locks").exists()
        with pytest.raises(UsageError, match="already running"):
            guards.sweep_locks(tmp_path / "r2", str(storage), "locks").__enter__()
        # Another sweep name on the same storage is free.
        with guards.sweep_locks(tmp_path / "r2", str(storage), "other"):
            pass
    with guards.sweep_locks(tmp_path / "r2", str(storage), "locks"):  # released on exit
        pass
    # A URI storage cannot be locked: the results folder's lock alone.
    with guards.sweep_locks(tmp_path / "r3", "s3://bucket/ray", "x"):
        assert (tmp_path / "r3" / guards.LOCKS / "x.lock").is_file()
