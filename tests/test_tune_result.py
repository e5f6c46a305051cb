"""What a trial reports to Tune (bench.common.tune_result): the numbers Tune acts on, the
rest as one JSON text that gives the driver the whole result back."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.common.tune_result import DETAILS, KEPT, pack, unpack

KEYS = st.text(alphabet="abcdefghij_", min_size=1, max_size=8).filter(lambda k: k != DETAILS)
VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**53, 2**53),
                   st.booleans(), st.text(max_size=10))
# Dictionaries of up to 12 such entries are slow to draw on a busy 2-core machine: the
# health check once stopped a CI run after 1 s with 3 inputs drawn. The draws stay the same.
DRAWS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def same(a: dict, b: dict) -> bool:
    """Equal, NaN equal to NaN, and each value of the same type."""
    return a.keys() == b.keys() and all(
        type(a[k]) is type(b[k]) and (a[k] == b[k] or (isinstance(a[k], float)
                                                       and math.isnan(a[k]) and math.isnan(b[k])))
        for k in a)


@DRAWS
@given(st.dictionaries(KEYS, VALUES, max_size=12), KEYS)
def test_unpack_gives_back_what_pack_was_given(result, metric):
    packed = pack(result, metric)
    assert same(unpack(packed), result)
    # Tune analyses numbers only: of those, it gets the metric and KEPT, nothing else.
    numbers = {k for k, v in packed.items() if isinstance(v, (int, float))}
    assert numbers <= {metric, *KEPT}
    assert set(packed) - {DETAILS} == {k for k, v in result.items()
                                       if k == metric or k in KEPT or isinstance(v, str)}
    json.dumps(packed)  # what Tune writes into its snapshot


@DRAWS
@given(st.dictionaries(KEYS, VALUES, max_size=12))
def test_a_result_without_details_is_read_as_it_is(result):
    assert same(unpack(result), result)
    assert unpack(None) == {}


def test_numpy_scalars_travel_as_python_numbers():
    packed = pack({"val_mean_iou": np.float32(0.5), "flops": np.int64(7),
                   "test_loss": np.float32(0.25), "end_reason": "completed"}, "val_mean_iou")
    assert set(packed) == {"val_mean_iou", "end_reason", DETAILS}
    back = unpack(packed)
    assert back["flops"] == 7 and type(back["flops"]) is int
    assert back["test_loss"] == 0.25 and type(back["test_loss"]) is float
