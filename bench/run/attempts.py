"""How many times each trial started: 1 + the failures Tune retried it after.

Tune retries a trial whose process or node was lost (``FailureConfig(max_failures)``) from
its last checkpoint, and counts each such failure in the trial's saved run metadata
(``num_failures``). A trial whose own code raises is not retried: it reports an ``error``
end instead (``bench.run.trial.run``), so its attempts stay 1.
"""

from __future__ import annotations

import sys
from typing import Any


def trial_attempts(result_grid: Any) -> dict[str, int]:
    """Trial id -> attempts, read from the experiment state Tune saved; {} when unreadable.

    ``result_grid`` is what ``Tuner.fit()`` returned; trial ids are the trial folders'
    names (``bench.spec.plan.trial_dirname``).
    """
    from ray.tune import ExperimentAnalysis

    try:
        analysis = ExperimentAnalysis(result_grid.experiment_path,
                                      storage_filesystem=result_grid.filesystem)
    except Exception as error:  # noqa: BLE001  (the tables must still be written)
        print(f"zoobench: cannot read Tune's experiment state ({type(error).__name__}: "
              f"{error}); attempts are recorded as 1", file=sys.stderr)
        return {}
    return {trial.trial_id: 1 + int(trial.num_failures) for trial in analysis.trials}
