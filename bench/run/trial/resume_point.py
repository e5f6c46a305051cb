"""Where a (re)started trial continues from: the newest whole checkpoint in its storage.

Tune snapshots its experiment state (each trial's last result and latest checkpoint)
every so often, and forces a snapshot whenever a trial has written ``num_to_keep``
checkpoints since the last one. With ``num_to_keep=1`` every epoch of every trial forced
a snapshot of every trial's state: O(trials) at each epoch, O(trials x epochs x trials)
over a sweep (``python tests/perf/many_trials.py`` showed the driver's CPU per trial
growing 3.5x from the first to the last 100 of 600 trials). zoobench keeps two
checkpoints per trial (``CHECKPOINTS_KEPT``), so a snapshot is forced only when one trial
writes two between snapshots (Tune's own snapshots come at most every 10 s and take at
most a twentieth of the driver's time): 1.6x from the first to the last 100 of 600.

The price: after the driver is killed, Tune's last snapshot may name an older checkpoint
of a trial than the trial wrote, or none. The trial's own folder in the storage has them
all, so a trial starts from the checkpoint of the most epochs whose files are whole, be
it the one Tune names or a newer one (``newest``).
"""

from __future__ import annotations

import json
import posixpath
import zipfile
from typing import Any

from bench.common.names import CHECKPOINT_BEST, CHECKPOINT_STATE, CHECKPOINT_VARIABLES

CHECKPOINT_PREFIX = "checkpoint_"  # Tune's name for a trial's checkpoint folders
CHECKPOINTS_KEPT = 2  # per trial: CheckpointConfig(num_to_keep)


def checkpoint_epoch(filesystem: Any, path: str) -> int | None:
    """The epochs a checkpoint folder ``path`` holds (its ``state.json``), or None when the
    folder is not a whole zoobench checkpoint: no readable state, or an ``.npz`` cut short
    (a worker killed while it was uploading). ``filesystem``: a ``pyarrow.fs`` filesystem.
    """
    try:
        with filesystem.open_input_file(posixpath.join(path, CHECKPOINT_STATE)) as handle:
            epoch = int(json.loads(handle.read())["epoch"])
        for name in (CHECKPOINT_VARIABLES, CHECKPOINT_BEST):
            file = posixpath.join(path, name)
            if name == CHECKPOINT_BEST and filesystem.get_file_info(file).type.name == "NotFound":
                continue  # no best epoch yet (its metric was never finite)
            with filesystem.open_input_file(file) as handle:
                # The zip's directory is written last: reading it (the file's tail, not the
                # whole file, which may be hundreds of MB in a bucket) finds a cut-short one.
                zipfile.ZipFile(handle).namelist()
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None
    return epoch


def newest(filesystem: Any, trial_path: str, given: str | None) -> str | None:
    """The checkpoint folder a trial continues from: of ``given`` (Tune's, may be None) and
    the ``checkpoint_*`` folders under ``trial_path``, the whole one of the most epochs
    (``given`` on a tie); None when there is none.

    ``filesystem`` is the storage's ``pyarrow.fs`` filesystem, ``trial_path`` the trial's
    folder in it, ``given`` a path in it.
    """
    from pyarrow import fs as pafs

    try:
        infos = filesystem.get_file_info(pafs.FileSelector(trial_path, allow_not_found=True))
    except OSError:
        infos = []
    folders = sorted(info.path for info in infos if info.type == pafs.FileType.Directory
                     and posixpath.basename(info.path).startswith(CHECKPOINT_PREFIX))
    best_path, best_epoch = None, -1
    for path in ([given] if given else []) + [p for p in folders if p != given]:
        epoch = checkpoint_epoch(filesystem, path)
        if epoch is not None and epoch > best_epoch:
            best_path, best_epoch = path, epoch
    return best_path if best_path is not None else given


def resume_from(given: Any) -> Any:
    """The ``ray.tune.Checkpoint`` a trial continues from (in a Tune session): Tune's
    ``given`` (``tune.get_checkpoint()``, may be None) or a newer whole one of the trial's
    own folder in the storage (``newest``)."""
    from ray import tune

    try:
        storage = tune.get_context().get_storage()
        filesystem, trial_path = storage.storage_filesystem, storage.trial_fs_path
    except (AttributeError, RuntimeError):  # no session storage: Tune's is all there is
        return given
    path = newest(filesystem, trial_path, given.path if given is not None else None)
    if path is None or (given is not None and path == given.path):
        return given
    return tune.Checkpoint(path, filesystem=filesystem)
