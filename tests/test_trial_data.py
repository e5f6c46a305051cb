"""A trial's datasets run on its CPU share (``bench.run.trial.run.with_cpu_share``):
tf.data's autotuning off, a private pool of the trial's CPUs, and the same elements."""

from __future__ import annotations

import numpy as np
import pytest

import zoo
from bench.run.trial.run import with_cpu_share


@pytest.mark.parametrize(("cpu", "threads"), [(1, 1), (0.5, 1), (3.7, 3), (8, 8)])
def test_the_trial_s_datasets_run_on_its_cpu_share_with_the_same_elements(cpu, threads):
    def splits():  # a shuffled dataset's k-th iterator is epoch k: one fresh load each
        loaded = zoo.datasets.load_splits("digits", batch_size=16, seed=0, height=16,
                                          width=16, train=48, val=16, augment=True)
        return loaded.train, loaded.val, loaded.test

    shared = with_cpu_share(splits(), cpu)
    assert len(shared) == 3
    for plain, after in zip(splits(), shared, strict=True):
        options = after.options()
        assert options.autotune.enabled is False
        assert options.threading.private_threadpool_size == threads
        # Only how it runs changes: the batches are the same, in the same order.
        for a, b in zip(plain.as_numpy_iterator(), after.as_numpy_iterator(), strict=True):
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, y)
