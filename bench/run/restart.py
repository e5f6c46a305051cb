"""``zoobench sweep --restart``: start a sweep name over, keeping what it had.

Running a sweep name again resumes it (Tune's ``Tuner.restore``); ``--restart`` is the
other choice Tune offers (its ``restart_errored``: from scratch instead of from the last
checkpoint), for the whole sweep. Before anything runs it says what it will set aside,
then:

- moves the sweep's Parquet partitions, predictions and spec copy to
  ``<results>/archive/<sweep>-<UTC time>/`` (same layout, readable as a results folder);
- moves Tune's experiment folders of the sweep (``NAME``, ``NAME.tune``, ``NAME.final``)
  there too when Tune's storage is local; on a URI storage they are deleted (a bucket
  cannot be moved into a local folder);
- tags the sweep's MLflow runs (parent and trials) ``zoobench.restarted_at`` and moves
  them to MLflow's trash (a soft delete: ``mlflow runs restore`` brings one back).

Nothing is removed for good without saying so first.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common.errors import UsageError, error_line
from bench.results import records
from bench.spec import guards
from bench.tracking import runs as tracking

STAGE_SUFFIXES = ("", ".tune", ".final")  # Tune experiments a sweep may have (run.sweep)


@dataclass(frozen=True)
class Plan:
    """What ``--restart`` sets aside for one sweep.

    Attributes:
        local: files and folders under the results (or a local storage) to archive.
        remote: Tune experiment URIs to delete (a ``s3://``, ``gs://`` storage).
        runs: MLflow run ids to tag and move to the trash.
        archive: the folder the local ones move to.
    """

    local: tuple[Path, ...]
    remote: tuple[str, ...]
    runs: tuple[str, ...]
    archive: Path

    @property
    def empty(self) -> bool:
        return not (self.local or self.remote or self.runs)


def plan(results: Path, sweep: str, storage: str, uri: str) -> Plan:
    """What restarting ``sweep`` under ``results`` would set aside (nothing moves yet).

    ``storage`` is Tune's storage (a local path or a URI); ``uri`` the MLflow store.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    local: list[Path] = [records.table_path(results, t, sweep).parent for t in records.TABLES]
    local += [results / "predictions" / sweep, results / guards.SPECS / f"{sweep}.yaml"]
    remote: list[str] = []
    for suffix in STAGE_SUFFIXES:
        experiment = f"{storage.rstrip('/')}/{sweep}{suffix}"
        if "://" not in storage:
            local.append(Path(experiment))
        elif _remote_exists(experiment):
            remote.append(experiment)
    try:
        run_ids = tracking.sweep_runs(uri, results, sweep)
    except Exception as error:  # noqa: BLE001  (an unreachable server: say so, do not guess)
        raise UsageError(f"--restart: cannot list the MLflow runs of sweep {sweep!r} at "
                         f"{uri} ({error_line(error)}); nothing was changed") from None
    return Plan(tuple(p for p in local if p.exists()), tuple(remote), tuple(run_ids),
                results / "archive" / f"{sweep}-{stamp}")


def _remote_exists(uri: str) -> bool:
    import pyarrow.fs

    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(uri)
        return filesystem.get_file_info(path).type != pyarrow.fs.FileType.NotFound
    except (OSError, ValueError):
        return False


def describe(restart: Plan, sweep: str, results: Path) -> list[str]:
    """The lines ``--restart`` prints before it changes anything."""
    if restart.empty:
        return [f"zoobench: --restart: sweep {sweep!r} has nothing to set aside; starting it"]
    lines = [f"zoobench: --restart: setting sweep {sweep!r} aside before starting it again:"]
    for path in restart.local:
        shown = path.relative_to(results) if path.is_relative_to(results) else path
        lines.append(f"  archive {shown} -> {restart.archive}")
    lines += [f"  delete Tune state {uri}" for uri in restart.remote]
    if restart.runs:
        lines.append(f"  MLflow: tag {len(restart.runs)} runs {tracking.TAG_RESTARTED} and "
                     f"move them to the trash (restore: mlflow runs restore --run-id ID)")
    return lines


def apply(restart: Plan, results: Path, uri: str) -> None:
    """Set aside what ``restart`` lists (see the module docstring)."""
    for path in restart.local:
        base = results if path.is_relative_to(results) else path.parent.parent
        target = restart.archive / (path.relative_to(base) if path.is_relative_to(base)
                                    else path.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
    for uri_ in restart.remote:
        import pyarrow.fs

        filesystem, path = pyarrow.fs.FileSystem.from_uri(uri_)
        filesystem.delete_dir(path)
    if restart.runs:
        tracking.retire_runs(uri, list(restart.runs),
                             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def start_over(results: Path, sweep: str, storage: str, uri: str) -> Plan:
    """Say what restarting ``sweep`` sets aside (stderr), then set it aside."""
    restart = plan(results, sweep, storage, uri)
    print("\n".join(describe(restart, sweep, results)), file=sys.stderr, flush=True)
    apply(restart, results, uri)
    return restart
