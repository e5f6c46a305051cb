"""The progress view: one line per trial event and a summary line (the quickstart's short
console is checked on its real run in ``tests/test_readme.py``)."""

from __future__ import annotations

import io
from pathlib import Path

from ray.tune.experiment import Trial

from bench.run.progress import ProgressView

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    """Seconds set by the test (the view's elapsed time and ETA)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _trial(trial_id: str, model: str, loss: str, seed: int = 0) -> Trial:
    return Trial("train_trial", config={"model": model, "loss": loss, "seed": seed},
                 trial_id=trial_id, stub=True)


def _view(total: int = 3) -> tuple[ProgressView, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    return ProgressView(total, "val_mean_iou", "max", out=out, summary_every_s=30,
                        clock=clock), out, clock


def test_start_finish_stop_failure_lines_and_summary() -> None:
    view, out, clock = _view(total=4)
    a, b, c = _trial("a1", "unet", "dice"), _trial("b2", "testnet", "focal", 1), \
        _trial("c3", "segnet", "dice", 2)
    for trial in (a, b, c):
        view.on_trial_start(0, [a, b, c], trial)
    clock.now += 65
    view.on_trial_result(1, [], a, {"val_mean_iou": 0.5})
    view.on_trial_result(2, [], a, {"val_mean_iou": 0.71234})
    view.on_trial_result(3, [], a, {"val_mean_iou": 0.6})  # the best is kept
    a.update_last_result({"val_mean_iou": 0.6, "end_reason": "completed"})
    view.on_trial_complete(3, [], a)
    view.on_trial_result(4, [], b, {"val_mean_iou": 0.3})
    b.update_last_result({"val_mean_iou": 0.3, "end_reason": ""})
    view.on_trial_complete(4, [], b)  # a scheduler stopped it: no end_reason
    clock.now += 5
    view.on_trial_error(5, [], c)
    clock.now += 30
    view.on_step_end(6, [])
    lines = out.getvalue().splitlines()
    assert lines == [
        "[  0:00] started   unet x dice seed 0 (a1)",
        "[  0:00] started   testnet x focal seed 1 (b2)",
        "[  0:00] started   segnet x dice seed 2 (c3)",
        "[  1:05] finished  unet x dice seed 0 (a1): val_mean_iou 0.7123",
        "[  1:05] stopped   testnet x focal seed 1 (b2): val_mean_iou 0.3000 (scheduler)",
        "[  1:10] failed    segnet x dice seed 2 (c3): error",
        "[  1:40] 2/4 done, 0 running, 1 pending, 1 failed; best val_mean_iou 0.7123 "
        "(unet x dice seed 0 (a1)); elapsed 1:40, ETA 0:33",
    ]


def test_summary_waits_its_period_and_the_end_always_writes_one() -> None:
    view, out, clock = _view(total=2)
    trial = _trial("a1", "testnet", "dice")
    view.on_trial_start(0, [trial], trial)
    clock.now += 10
    view.on_step_end(1, [trial])  # under 30 s since the start: nothing
    assert len(out.getvalue().splitlines()) == 1
    clock.now += 25
    view.on_step_end(2, [trial])
    assert out.getvalue().splitlines()[-1] == (
        "[  0:35] 0/2 done, 1 running, 1 pending, 0 failed; elapsed 0:35, ETA -")
    view.on_experiment_end([trial])
    assert out.getvalue().splitlines()[-1].startswith("[  0:35] 0/2 done")
    assert len(out.getvalue().splitlines()) == 3


def test_min_mode_best_is_the_lowest() -> None:
    out = io.StringIO()
    view = ProgressView(2, "val_loss", "min", out=out, clock=Clock())
    a, b = _trial("a1", "testnet", "dice"), _trial("b2", "unet", "dice")
    view.on_trial_result(1, [], a, {"val_loss": 0.4})
    view.on_trial_result(1, [], b, {"val_loss": 0.2})
    view.on_trial_result(2, [], b, {"val_loss": float("nan")})
    assert view.best() == ("b2", 0.2)


def test_summaries_thin_out_as_the_sweep_gets_longer() -> None:
    view, out, clock = _view(total=2)
    times = []
    for _ in range(120):  # an hour, a step every 30 s
        clock.now += 30
        before = len(out.getvalue().splitlines())
        view.on_step_end(0, [])
        if len(out.getvalue().splitlines()) > before:
            times.append(clock.now - 1000.0)
    assert times[:4] == [30, 60, 90, 120]
    assert len(times) < 20  # not 120
    assert all(b - a >= 0.25 * a - 1e-9 for a, b in zip(times[4:], times[5:], strict=False))


def _ended(trial_id: str, value: float, status: str = Trial.TERMINATED) -> Trial:
    trial = _trial(trial_id, "unet", "dice")
    for metric in (value - 0.1, value, value - 0.05):  # its best is not its last report
        trial.update_last_result({"val_mean_iou": metric, "end_reason": "completed"})
    trial.set_status(status)
    return trial


def test_a_resumed_sweep_counts_the_trials_ended_before_and_paces_its_eta_on_this_run(
) -> None:
    """Tune restores ended trials without completion events: the view counts them from the
    first step's trial list, with their best reported value, and does not let them make
    the ETA look fast (it was ``2/6 done`` with 5 done, before)."""
    view, out, clock = _view(total=6)
    restored = [_ended("a1", 0.6), _ended("b2", 0.8), _ended("c3", 0.5, Trial.ERROR)]
    new = _trial("d4", "testnet", "dice")
    view.on_step_begin(0, [*restored, new])
    view.on_trial_start(0, [*restored, new], new)
    clock.now += 100
    view.on_trial_result(1, [], new, {"val_mean_iou": 0.7})
    new.update_last_result({"val_mean_iou": 0.7, "end_reason": "completed"})
    view.on_trial_complete(1, [], new)
    view.on_step_begin(2, [*restored, new])  # counted once, not again
    view.on_experiment_end([*restored, new])
    assert out.getvalue().splitlines()[-1] == (
        "[  1:40] 3/6 done, 0 running, 2 pending, 1 failed; best val_mean_iou 0.8000 "
        "(unet x dice seed 0 (b2)); elapsed 1:40, ETA 3:20")


def test_a_restored_finished_stage_reports_all_done() -> None:
    """A stage that had ended is restored and runs no step: its end says all done."""
    view, out, _ = _view(total=2)
    view.on_experiment_end([_ended("a1", 0.6), _ended("b2", 0.4)])
    assert out.getvalue().splitlines() == [
        "[  0:00] 2/2 done, 0 running, 0 pending, 0 failed; best val_mean_iou 0.6000 "
        "(unet x dice seed 0 (a1)); elapsed 0:00, ETA -"]
