"""Run a sweep end to end: spec → plan → Tune trials → records → Parquet and leaderboard.

``run_sweep`` is what ``zoobench sweep`` calls. Running the same sweep name again
restores Tune's experiment (``Tuner.restore``): finished trials are not rerun,
interrupted ones continue from their last checkpoint, and the sweep's Parquet
partitions are rewritten whole, so every trial appears once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common.errors import UsageError
from bench.common.quiet import quiet_start_up_logs
from bench.common.versions import versions
from bench.results import records
from bench.run import data_cache, interrupted, progress, tune_files
from bench.run.attempts import MACHINERY_ALLOWANCE, Attempts, trial_attempts
from bench.run.live_tables import LiveTables
from bench.run.trial import SweepContext, train_trial
from bench.run.trial.resume_point import CHECKPOINTS_KEPT
from bench.spec import guards, stages
from bench.spec.model import SweepSpec
from bench.spec.plan import Plan, check_plan, make_plan
from bench.spec.plugins import import_plugins
from bench.tracking import outbox
from bench.tracking import runs as tracking


@dataclass(frozen=True)
class SweepOptions:
    """Where a sweep runs and where its results go (the CLI flags).

    Attributes:
        results: results folder (Parquet, PNGs, and by default MLflow and Tune's state).
        tracking_uri: MLflow tracking URI; None is ``sqlite:///<results>/mlflow.db``.
        address: Ray address (``auto``, ``ray://host:10001``, ``host:6379``); None starts
            a local Ray.
        storage: Tune's storage (a path or ``s3://``, ``gs://`` URI); None is
            ``<results>/ray``, which serves one machine only.
        verbose: Tune's own status table and log lines on the console (as well as
            zoobench's progress lines); otherwise they go to ``<results>/logs/<sweep>.log``.
    """

    results: Path
    tracking_uri: str | None = None
    address: str | None = None
    storage: str | None = None
    verbose: bool = False
    restart: bool = False  # set the sweep's earlier run aside first (bench.run.restart)


@dataclass(frozen=True)
class SweepOutcome:
    """What a finished ``run_sweep`` wrote: its tables, and how many trials failed."""

    trials: pd.DataFrame
    history: pd.DataFrame
    leaderboard: pd.DataFrame
    failed: int
    unfinished: int
    tracking: tracking.Tracking
    mlflow_missing: outbox.Delivery = outbox.Delivery(0, 0, None)


def _storage_path(options: SweepOptions) -> str:
    if options.storage:
        return options.storage if "://" in options.storage else str(Path(options.storage)
                                                                      .resolve())
    return str((options.results / "ray").resolve())


def _context(spec: SweepSpec, track: tracking.Tracking,
             cache: Path | None = None) -> SweepContext:
    return SweepContext(
        sweep=spec.name,
        datasets={d.label: (d.name, dict(d.options)) for d in spec.datasets},
        models={m.label: (m.name, dict(m.options)) for m in spec.models},
        losses={loss.label: (loss.name, dict(loss.options)) for loss in spec.losses},
        epochs=spec.epochs,
        metric=spec.metric,
        mode=spec.mode,
        patience=spec.patience,
        time_budget_s=spec.time_budget_s,
        mixed_precision=spec.mixed_precision,
        xla=spec.xla,
        cpu=spec.cpu,
        gpu=spec.gpu,
        tracking=track,
        nsd_tolerance=spec.nsd_tolerance,
        plugins=spec.plugins,
        data_cache=str(cache.resolve()) if cache is not None else None,
        gpu_memory_mb=spec.gpu_memory_mb,
        max_failures=spec.max_failures,
        log_models=spec.log_models,
        # A new token per driver run: a trial tells Tune's retry from a resumed sweep.
        run_token=uuid.uuid4().hex,
    )


def worker_variables() -> dict[str, str]:
    """The environment variables the sweep's Ray workers get (on a cluster through the job's
    ``runtime_env``, locally through this process's environment)."""
    from bench.common.tensorflow_import import WHOLE_KERAS_VARIABLE

    variables = {
        # Keep TensorFlow's start-up chatter out of Tune's progress output.
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        # A warm worker (reuse_workers) waits this long for its last trial's thread to end
        # (MLflow's last calls) before taking the next trial; Tune's 2 s default would fail
        # the next trial when a server is slow.
        "TUNE_FUNCTION_THREAD_TIMEOUT_S": os.environ.get("TUNE_FUNCTION_THREAD_TIMEOUT_S",
                                                         "60")}
    if WHOLE_KERAS_VARIABLE in os.environ:  # a plugin needs Keras' integrations in trials
        variables[WHOLE_KERAS_VARIABLE] = os.environ[WHOLE_KERAS_VARIABLE]
    return variables


def _init_ray(address: str | None, verbose: bool = False,
              plugins: tuple[str, ...] = ()) -> None:
    import ray

    from bench.spec.plugins import modules_to_ship

    if ray.is_initialized():
        return
    env: dict[str, Any] = {"env_vars": worker_variables()}
    # On a cluster, workers start from their node's environment, not the driver's: the
    # spec's plugin modules that are the user's own code travel with the job.
    shipped = modules_to_ship(plugins) if address else []
    if shipped:
        env["py_modules"] = shipped
        print(f"zoobench: shipping plugin code to the cluster's workers: {', '.join(shipped)}",
              file=sys.stderr)
    # Trial workers' own lines (Ray Train's "Checkpoint successfully created" per epoch)
    # stay in Ray's session logs unless --verbose; failures reach the console through
    # zoobench's progress lines and the summary.
    try:
        if address:
            ray.init(address=address, runtime_env=env, log_to_driver=verbose)
        else:
            # A local Ray's workers inherit this process's environment, so the variables go
            # there. (Not for prestarted workers: Tune gives its actors a runtime_env of their
            # own, ray/tune/execution/class_cache.py, so a trial never takes one of those.)
            os.environ.update(env["env_vars"])
            # Ray starts one idle worker per CPU for the first driver, and no trial ever
            # takes one (see above): on 2 cores they slowed the spec check and Ray's start
            # by 0.5 s, and they stay for the whole sweep (80 MiB each; one per CPU of a
            # big node). A user's own setting wins.
            os.environ.setdefault("RAY_prestart_worker_first_driver", "0")
            # "Started a local Ray instance." only with --verbose: the sweep's lines follow.
            ray.init(include_dashboard=False, log_to_driver=verbose,
                     logging_level=logging.INFO if verbose else logging.WARNING)
    except ConnectionError as error:
        raise UsageError(f"--address: cannot reach Ray at {address!r} ({error})") from None


def start_ray_early(options: SweepOptions) -> None:
    """Start the local Ray now, before the spec is known, while it is checked in a child
    process (``bench.spec.check_process``); ``run_sweep`` then finds it started. Nothing
    here depends on the spec: on a cluster (``address``) the spec's plugins travel with the
    job, so Ray is joined later, by ``run_sweep``. Then, while the check goes on, a new
    SQLite tracking store is made aside (``bench.tracking.store_template``)."""
    from bench.tracking import store_template

    if options.address is None:
        outbox.bound_http_retries()  # before Ray starts: its workers inherit the environment
        if not options.verbose:
            quiet_start_up_logs(local_ray=True)
        _init_ray(None, options.verbose)
    # After Ray, not beside it: a thread of this process would slow Ray's start (the GIL).
    # Made beside it, the sweep no longer waited 1.3 s for the store, but Ray's start and
    # the spec's check were slower by as much (ten A/B pairs of a one-trial sweep).
    store_template.prepare(options.tracking_uri or tracking.default_tracking_uri(options.results))


def stop_local_ray(options: SweepOptions) -> None:
    """End the local Ray ``start_ray_early`` started, once the command has said its last.

    Ray's own exit hook would end it too, but first sleeps 0.5 s so that workers' log
    lines reach the console (``ray.shutdown(_exiting_interpreter=True)``); without
    ``--verbose`` no worker line is sent to the console, and every trial has ended. With
    ``--verbose`` or a cluster (``address``), nothing changes here. Its autoscaler monitor
    is ended first: ``ray.shutdown`` would wait a second for it (``bench.run.ray_exit``).
    """
    import ray

    from bench.run.ray_exit import end_monitor_first

    if options.address is None and not options.verbose and ray.is_initialized():
        end_monitor_first()
        ray.shutdown()


def first_datasets(spec: SweepSpec) -> list[tuple[str, int, dict[str, Any]]]:
    """``(name, seed, options)`` of the datasets the sweep's first stage trains on, its
    seeds outermost (the tune stage's seeds under a protocol)."""
    seeds = spec.protocol.tune_seeds if spec.protocol is not None else spec.seeds
    return [(d.name, int(seed), dict(d.options)) for seed in seeds for d in spec.datasets]


def _check_resources(spec: SweepSpec) -> None:
    """UsageError when one trial asks for more than Ray's largest node has (not a silent wait)."""
    import ray

    from bench.spec.model import check_resources

    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    check_resources(spec, ray.cluster_resources(), nodes)


def _spec_copies(spec: SweepSpec, options: SweepOptions, results: Path) -> list[str]:
    """Where this sweep's spec is kept: beside its Parquet and beside Tune's state."""
    experiment = f"{_storage_path(options).rstrip('/')}/{spec.name}"
    return guards.spec_copies(results, experiment, spec.name)


@dataclass(frozen=True)
class Stage:
    """One Tune experiment of a sweep: a plain sweep has one, a ``protocol`` two.

    Attributes:
        name: the ``stage`` its trials are recorded under (``final`` or ``tune``).
        spec: the spec it runs (a protocol's stage spec, see ``bench.spec.protocol``).
        experiment: Tune's experiment name under the storage.
        plan: what Tune searches (param space and TuneConfig).
    """

    name: str
    spec: SweepSpec
    experiment: str
    plan: Plan


def _plain_stage(spec: SweepSpec) -> Stage:
    return Stage(records.STAGE_FINAL, spec, spec.name, make_plan(spec))


def _tune_stage(spec: SweepSpec) -> Stage:
    stage_spec = stages.tune_stage(spec)
    plan = make_plan(stage_spec)
    space = {**plan.param_space, "stage": stages.TUNE_STAGE}
    return Stage(stages.TUNE_STAGE, stage_spec, f"{spec.name}.tune",
                 replace(plan, param_space=space))


def _final_stage(spec: SweepSpec, chosen: dict[str, dict[str, Any]]) -> Stage:
    stage_spec = stages.final_stage(spec)
    space = {**stages.final_param_space(spec, chosen), "stage": records.STAGE_FINAL}
    plan = Plan(space, make_plan(stage_spec).tune_config, len(chosen) * len(stage_spec.seeds))
    return Stage(records.STAGE_FINAL, stage_spec, f"{spec.name}.final", plan)


def _tuner(stage: Stage, options: SweepOptions, context: SweepContext) -> Any:
    """A new Tuner for ``stage``, or the restored one when it has run before."""
    from ray import tune

    storage = _storage_path(options)
    experiment = f"{storage.rstrip('/')}/{stage.experiment}"
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, context=context),
        {"cpu": stage.spec.cpu, "gpu": stage.spec.gpu},
    )
    if tune.Tuner.can_restore(experiment):
        print(f"zoobench: resuming {_stage_words(stage)} from {experiment}", flush=True)
        return tune.Tuner.restore(experiment, trainable, resume_unfinished=True,
                                  resume_errored=True)
    # Tune forces a snapshot of every trial's state when one trial has written
    # CHECKPOINTS_KEPT checkpoints since the last; a trial itself continues from its newest
    # (bench.run.trial.resume_point). No warning when that happens often.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    run_config = tune.RunConfig(
        name=stage.experiment,
        storage_path=storage,
        checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
        # A lost process or node: retried from the last checkpoint. A trial's own Python
        # error is reported as its end instead of raised (bench.run.trial.run): never retried.
        # The machinery's failures (before the trial's code ran) get an allowance of their
        # own; the trainable ends a trial lost more than max_failures times itself
        # (bench.run.attempts).
        failure_config=tune.FailureConfig(
            max_failures=stage.spec.max_failures + MACHINERY_ALLOWANCE),
        **_callbacks(stage, options, context),
    )
    return tune.Tuner(trainable, param_space=stage.plan.param_space,
                      tune_config=stage.plan.tune_config, run_config=run_config)


def _callbacks(stage: Stage, options: SweepOptions, context: SweepContext) -> dict[str, Any]:
    """``RunConfig``'s callbacks and output settings: the progress view (``bench.run.progress``)
    and the tables written as each trial ends (``bench.run.live_tables``; pickled with the
    experiment, so a resumed sweep gets it back from Tune)."""
    kwargs = progress.run_config_kwargs(stage.plan.trials, stage.spec, options.verbose,
                                        options.results)
    live = LiveTables(options.results.resolve(), stage.spec, stage.name,
                      context.tracking.experiment_id, versions())
    kwargs["callbacks"] = [*kwargs.get("callbacks", []), live]
    return kwargs


def _stage_words(stage: Stage) -> str:
    if stage.experiment == stage.spec.name:
        return f"sweep {stage.spec.name!r}"
    return f"stage {stage.name!r} of sweep {stage.spec.name!r}"


@dataclass
class _Tables:
    """Rows gathered over a sweep's stages, written together at the end."""

    trials: list[pd.DataFrame]
    history: list[pd.DataFrame]
    cases: list[pd.DataFrame]
    outboxes: dict[str, dict[str, Any]] = field(default_factory=dict)  # trial id -> unsent

    def frame(self, name: str) -> pd.DataFrame:
        frames = [f for f in getattr(self, name) if len(f.columns)]
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _run_stage(stage: Stage, options: SweepOptions, context: SweepContext, results: Path,
               track: tracking.Tracking, scratch: Path, tables: _Tables) -> pd.DataFrame:
    """Fit (or resume) ``stage``; add its rows to ``tables``; its trials table."""
    tuner = _tuner(stage, options, context)
    result_grid = tuner.fit()
    unfinished_ids = interrupted.unfinished_trial_ids(result_grid)
    attempts = trial_attempts(result_grid)
    outcomes = []
    for r in result_grid:
        counted = attempts.get(Path(r.path).name, Attempts())
        outcomes.append(records.outcome_from_result(
            r, scratch, unfinished=Path(r.path).name in unfinished_ids,
            attempts=counted.attempts, machinery_retries=counted.machinery_retries))
    png_paths = {}
    for outcome in outcomes:
        if outcome.png is not None:
            relative = Path("predictions") / stage.spec.name / f"{outcome.trial_id}.png"
            (results / relative).parent.mkdir(parents=True, exist_ok=True)
            _copy(outcome.png, results / relative)
            png_paths[outcome.trial_id] = relative.as_posix()
    trials, history = records.trial_rows(
        outcomes, stage.spec, versions=versions(),
        run_ids=_trial_run_ids(track, stage.spec.name, outcomes),
        experiment_id=track.experiment_id, png_paths=png_paths,
    )
    tables.trials.append(trials)
    tables.history.append(history)
    tables.cases.append(records.case_rows(outcomes, stage.spec))
    tables.outboxes.update({o.trial_id: o.outbox for o in outcomes if o.outbox})
    return trials


def _trial_run_ids(track: tracking.Tracking, sweep: str,
                   outcomes: list[records.TrialOutcome]) -> dict[str, str]:
    """``tracking.trial_run_ids`` when a trial never reported its run's id (it failed
    first), else {} (no search: one query that reads every run of the sweep); {} too when
    the server does not answer (outboxes know)."""
    if all(outcome.metrics.get("mlflow_run_id") for outcome in outcomes):
        return {}
    try:
        return tracking.trial_run_ids(track, sweep)
    except Exception:  # noqa: BLE001  (an unreachable server must not lose the tables)
        return {}


def _send_to_mlflow(trials: pd.DataFrame, tables: _Tables, track: tracking.Tracking,
                    results: Path, sweep: str, failed: bool) -> outbox.Delivery:
    """Send what the trials' runs may lack, each run's status and the parent's status.

    What the server does not take is saved for ``zoobench sync-mlflow`` (``bench.tracking.outbox``).
    """
    boxes: dict[str, outbox.Outbox] = {}
    saved = outbox.read_all(results, sweep)
    for row in trials.itertuples():
        state = tables.outboxes.get(row.trial_id)
        run_id = row.mlflow_run_id if isinstance(row.mlflow_run_id, str) else None
        if state is None and run_id is None:
            continue  # never reached MLflow and never reported: nothing to send
        box = outbox.Outbox.from_dict(state) if state else outbox.Outbox(track.uri, run_id)
        earlier = saved.get(outbox.folder(results, sweep) / f"{row.trial_id}.json")
        if earlier is not None:
            box.merge(earlier)
        # A stopped trial is killed mid-fit and cannot end its own run.
        box.status = "FAILED" if row.status in records.FAILED_STATUSES else "FINISHED"
        boxes[str(row.trial_id)] = box
    boxes["_sweep"] = outbox.Outbox(track.uri, track.parent_run_id,
                                    status="FAILED" if failed else "FINISHED")
    return outbox.deliver(boxes, results, sweep)


def _planned_trials(spec: SweepSpec) -> int:
    if spec.protocol is None:
        return spec.samples * spec.cells
    cells = len(spec.grid)
    return cells * (spec.protocol.tune_samples * len(spec.protocol.tune_seeds)
                    + len(spec.protocol.final_seeds))


def _run_protocol(spec: SweepSpec, options: SweepOptions, context: SweepContext,
                  results: Path, track: tracking.Tracking, scratch: Path,
                  tables: _Tables) -> None:
    """Stage ``tune`` then, from its results, stage ``final`` (``bench.spec.protocol``)."""
    tune_trials = _run_stage(_tune_stage(spec), options, context, results, track, scratch,
                             tables)
    if tune_trials["end_reason"].isin(records.UNFINISHED_REASONS).any():
        return  # interrupted: a rerun finishes the search before anything is chosen
    chosen = stages.select_params(tune_trials, spec)
    if not chosen:
        print("zoobench: every trial of the tune stage failed; nothing to retrain",
              flush=True)
        return
    print(f"zoobench: tune stage done; retraining {len(chosen)} chosen settings on seeds "
          f"{list(spec.protocol.final_seeds)}", flush=True)
    _run_stage(_final_stage(spec, chosen), options, context, results, track, scratch, tables)


def run_sweep(spec: SweepSpec, options: SweepOptions,
              prebuild: Callable[[Path, list[tuple[str, int, dict[str, Any]]]], Any] | None = None,
              ) -> SweepOutcome:
    """Run (or resume) ``spec``; write Parquet, PNGs and the leaderboard under the results.

    Returns the sweep's tables. Failed trials (ERROR, NAN) are counted in ``failed``;
    they do not stop the others. Trials an interruption (Ctrl-C) left unfinished are
    counted in ``unfinished``; running the same sweep again continues them.
    ``prebuild(cache, datasets)``: given, it is handed the sweep's data cache and the first
    stage's ``(name, seed, options)`` as the trials start, to build them there
    (``zoobench sweep``: the child that checked the spec, ``bench.spec.check_process``).
    """
    check_plan(spec)  # before anything is started or written
    results = guards.usable_folder(options.results, "--results")
    if options.storage and "://" not in options.storage:
        guards.usable_folder(Path(options.storage), "--storage")
    # One run per sweep name at a time: two would overwrite each other's Parquet, or
    # (two results folders on one --storage) run one Tune experiment twice.
    with guards.sweep_locks(results, _storage_path(options), spec.name):
        return _run_locked(spec, options, results, prebuild)


def _run_locked(spec: SweepSpec, options: SweepOptions, results: Path,
                prebuild: Callable[[Path, list[tuple[str, int, dict[str, Any]]]], Any] | None
                ) -> SweepOutcome:
    """``run_sweep`` once the sweep's lock is held and ``results`` exists."""
    from bench.results.baselines import with_baselines
    from bench.results.leaderboard import aggregate

    copies = _spec_copies(spec, options, results)
    uri = options.tracking_uri or tracking.default_tracking_uri(results)
    if options.restart:
        from bench.run.restart import start_over

        start_over(results, spec.name, _storage_path(options), uri)
    guards.check_same_spec(spec.source, spec.name, copies)
    outbox.bound_http_retries()  # a dead server fails a call in seconds (workers inherit it)
    if not options.verbose:
        quiet_start_up_logs(local_ray=options.address is None)
    # The tracking store starts (a new sqlite store's schema, or a server's round trips)
    # while Ray starts its processes: the two overlap, ~4 s sooner to the first step.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoobench-mlflow") as pool:
        started = pool.submit(
            tracking.start_sweep, uri, results, spec.name, spec.source,
            {"dataset": ", ".join(d.label for d in spec.datasets), "metric": spec.metric,
             "mode": spec.mode, "epochs": spec.epochs, "samples": spec.samples,
             "search": spec.search, "scheduler": spec.scheduler.name,
             "trials": _planned_trials(spec), "protocol": spec.protocol is not None},
        )
        _init_ray(options.address, options.verbose, tuple(spec.plugins))
        try:
            track = started.result()
        except Exception as error:  # noqa: BLE001  (any store failure is a bad --tracking-uri)
            raise UsageError(f"--tracking-uri: cannot use {uri!r} "
                             f"({records.error_line(error)})") from None
    _check_resources(spec)
    # Each distinct dataset is built once in this run and shared by its trials.
    cache = data_cache.open_cache(results, spec.name)
    if prebuild is not None:
        prebuild(cache, first_datasets(spec))
    context = _context(spec, track, cache)
    guards.record_spec(spec.source, copies)
    interrupted.hide_tune_restore_hint()
    tables = _Tables([], [], [])
    try:
        with tempfile.TemporaryDirectory(prefix="zoobench-png-") as scratch, \
                progress.tune_output(results, spec.name, options.verbose), \
                tune_files.without_tune_files():
            if spec.protocol is None:
                _run_stage(_plain_stage(spec), options, context, results, track,
                           Path(scratch), tables)
            else:
                _run_protocol(spec, options, context, results, track, Path(scratch), tables)
    finally:
        data_cache.close_cache(cache)
    trials, history, cases = (tables.frame(name) for name in ("trials", "history", "cases"))
    trials.insert(0, "sweep", spec.name)
    history.insert(0, "sweep", spec.name)
    board = aggregate(trials)
    if "val_psnr" in trials:  # next-frame data, perhaps a plugin's (checked in a child)
        import_plugins(spec.plugins)
    # Next-frame data: persistence and mean-frame rows, scored on the same frames.
    board = with_baselines(board, trials, context.datasets)
    # The live tables' per-trial parts (bench.run.live_tables) become one part-0 each.
    records.compact(results, "trials", spec.name, trials)
    records.compact(results, "history", spec.name, history)
    records.write_table(results, "cases", spec.name, cases)
    records.write_table(results, "leaderboard", spec.name, board)
    with contextlib.suppress(Exception):  # MLflow away: the Parquet board is the record
        tracking.log_leaderboard(track, board)
    if spec.register_best is not None:
        from bench.tracking.model_registry import register_best

        # Chosen on validation: the configurations ranked by the sweep's own val_* metric,
        # and the best row's validation-best run (docs/trust.md), never by test numbers.
        register_best(track, aggregate(trials, metric=spec.metric), spec.register_best,
                      spec.name)
    failed = int(trials["status"].isin(records.FAILED_STATUSES).sum())
    unfinished = int(trials["end_reason"].isin(records.UNFINISHED_REASONS).sum())
    missing = _send_to_mlflow(trials, tables, track, results, spec.name, failed > 0)
    return SweepOutcome(trials, history, board, failed, unfinished, track, missing)


def _copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a hidden temporary file (never half a file)."""
    import shutil

    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _retries_text(row: Any) -> str:
    """`` (2 retries of the machinery, not counted)`` for a trial that had any."""
    retries = getattr(row, "machinery_retries", None)
    if retries is None or pd.isna(retries) or not retries:
        return ""
    return f" ({int(retries)} retr{'ies' if retries > 1 else 'y'} of the machinery, not counted)"


def summary_lines(outcome: SweepOutcome) -> list[str]:
    """A short text summary of a sweep: one line per trial, failures first.

    A trial an interruption left unfinished says which epoch it had recorded (a rerun
    continues from there), e.g. ``interrupted after epoch 1/6: val_mean_iou 0.2493``.
    """
    trials = outcome.trials
    metric = str(trials["metric"].iloc[0]) if len(trials) else ""
    lines = []
    order = trials.assign(_failed=~trials["status"].isin(records.FAILED_STATUSES))
    several = trials["dataset"].nunique() > 1 if len(trials) else False
    for row in order.sort_values(["_failed", "dataset", "model", "loss", "seed"]).itertuples():
        value = getattr(row, metric, None) if metric else None
        shown = f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "-"
        reason = f"  ({row.error})" if isinstance(row.error, str) else ""
        on = f" on {row.dataset}" if several else ""
        head = f"{row.status:<10} {row.model} x {row.loss}{on} seed {row.seed}: "
        if row.end_reason in records.UNFINISHED_REASONS:
            done = int(row.epochs_done) if pd.notna(row.epochs_done) else 0
            lines.append(head + (f"interrupted after epoch {done}/{row.epochs}: {metric} {shown}"
                                 if done else f"interrupted before epoch 1/{row.epochs} ended"))
            continue
        lines.append(head + f"{metric} {shown} after {row.epochs_done}/{row.epochs} "
                            f"epochs{reason}{_retries_text(row)}")
    counts = json.dumps(trials["status"].value_counts().to_dict())
    lines.append(f"{len(trials)} trials {counts}")
    return lines
