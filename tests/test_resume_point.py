"""A restarted trial continues from its newest whole checkpoint (bench.run.trial.resume_point).

Tune's experiment snapshot may name an older checkpoint than the trial wrote (zoobench keeps
two per trial, so Tune no longer snapshots at every epoch); the trial's folder has them all.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pyarrow import fs as pafs

from bench.common.names import CHECKPOINT_BEST, CHECKPOINT_STATE, CHECKPOINT_VARIABLES
from bench.run.trial.resume_point import checkpoint_epoch, newest

LOCAL = pafs.LocalFileSystem()


def _checkpoint(trial: Path, index: int, epoch: int, best: bool = True) -> str:
    folder = trial / f"checkpoint_{index:06d}"
    folder.mkdir(parents=True)
    (folder / CHECKPOINT_STATE).write_text(json.dumps({"epoch": epoch, "history": []}))
    with open(folder / CHECKPOINT_VARIABLES, "wb") as handle:
        np.savez(handle, v00000=np.full(100, epoch, dtype=np.float32))
    if best:
        with open(folder / CHECKPOINT_BEST, "wb") as handle:
            np.savez(handle, v00000=np.zeros(10))
    return str(folder)


def test_a_newer_checkpoint_than_tunes_is_taken(tmp_path):
    given = _checkpoint(tmp_path, 0, 3)
    newer = _checkpoint(tmp_path, 1, 5)
    _checkpoint(tmp_path, 2, 4)  # a higher index is not what counts: the epochs are
    assert newest(LOCAL, str(tmp_path), given) == newer


def test_tunes_checkpoint_stays_when_it_is_the_newest(tmp_path):
    _checkpoint(tmp_path, 0, 2)
    given = _checkpoint(tmp_path, 1, 6)
    assert newest(LOCAL, str(tmp_path), given) == given
    # a tie keeps Tune's
    same = _checkpoint(tmp_path, 2, 6)
    assert newest(LOCAL, str(tmp_path), given) == given
    assert newest(LOCAL, str(tmp_path), same) == same


def test_a_trial_tune_knew_no_checkpoint_of_finds_its_own(tmp_path):
    only = _checkpoint(tmp_path, 0, 1)
    assert newest(LOCAL, str(tmp_path), None) == only
    assert newest(LOCAL, str(tmp_path / "no-such-trial"), None) is None


def test_a_checkpoint_cut_short_is_passed_over(tmp_path):
    given = _checkpoint(tmp_path, 0, 2)
    cut = _checkpoint(tmp_path, 1, 3)
    data = (Path(cut) / CHECKPOINT_VARIABLES).read_bytes()
    (Path(cut) / CHECKPOINT_VARIABLES).write_bytes(data[: len(data) // 2])
    no_state = _checkpoint(tmp_path, 2, 4)
    (Path(no_state) / CHECKPOINT_STATE).unlink()
    bad_best = _checkpoint(tmp_path, 3, 5)
    (Path(bad_best) / CHECKPOINT_BEST).write_bytes(b"PK\x03\x04 not a zip")
    assert [checkpoint_epoch(LOCAL, p) for p in (given, cut, no_state, bad_best)] == [
        2, None, None, None]
    assert newest(LOCAL, str(tmp_path), given) == given


def test_a_checkpoint_without_best_weights_is_whole(tmp_path):
    # best.npz appears once an epoch's metric was finite; before that a checkpoint has none
    folder = _checkpoint(tmp_path, 0, 1, best=False)
    assert checkpoint_epoch(LOCAL, folder) == 1
    (tmp_path / "not_a_checkpoint").mkdir()
    (tmp_path / "events.out").write_text("")
    assert newest(LOCAL, str(tmp_path), None) == folder
