"""How much memory one process keeps of every Keras model it builds and trains.

A warm worker (``reuse_workers``) builds one model per trial, and Keras 3 on TensorFlow
keeps each one's traced train graph even after ``keras.backend.clear_session()`` and
``gc.collect()``: a ``tf.custom_gradient`` entry in TensorFlow's gradient registry holds it
(``bench.run.trial.leaks``; ``--forget`` runs a warm worker's reset between trials,
``bench.run.trial.run.reset_process_state``, which drops those entries, after each round).
This loop builds ``--model``, fits it one epoch on random data, optionally measures its
cost as a trial's end does (``--cost``: the traced forward function, FLOPs, latency), drops
it, clears the session, collects garbage, and prints the process's resident memory after
each round, then the growth per round.

    python tests/perf/keras_model_leak.py [--rounds 8] [--model testnet] [--cost] [--forget]

Measured on a 2-core machine, testnet 32x32, 20 rounds, the optimizer built before ``fit``
as a trial does: 874 -> 1,085 MiB without ``--forget`` (11 MiB a round, still growing);
882 -> 936 MiB with it, flat from the third round (926 -> 936 MiB over rounds 3-20).
``--trim`` (glibc's ``malloc_trim`` after each round) does not stop the growth: the memory
is held by live objects, not fragmented.
"""

from __future__ import annotations

import argparse
import gc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--model", default="testnet")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--cost", action="store_true", help="also measure cost as a trial does")
    parser.add_argument("--forget", action="store_true",
                        help="drop the round's tf.custom_gradient entries as a warm worker "
                             "does between trials (bench.run.trial.leaks)")
    parser.add_argument("--trim", action="store_true",
                        help="return freed heap to the system after each round (malloc_trim)")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    import zoo
    from bench.run.trial.cost import measure_cost, resident_mb
    from bench.run.trial.run import reset_process_state

    tf.config.threading.set_intra_op_parallelism_threads(1)
    shape = (args.size, args.size, 1)
    rng = np.random.default_rng(0)
    x = rng.random((64, *shape), dtype=np.float32)
    y = np.eye(11, dtype=np.float32)[rng.integers(0, 11, (64, args.size, args.size))]
    rss = []
    if args.forget:
        reset_process_state(first=True)  # a worker's first trial: notes what imports registered
    for round_ in range(args.rounds):
        model, _, _ = zoo.get_model(args.model, args.size, args.size, 1, 11)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.optimizer.build(model.trainable_variables)  # as a trial does (one trace)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        if args.cost:
            measure_cost(model, shape, 32)
        del model
        if args.forget:
            reset_process_state()  # what a warm worker does between trials
        else:
            keras.backend.clear_session()
            gc.collect()
        if args.trim:
            import ctypes
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        rss.append(resident_mb())
        print(f"round {round_ + 1}: resident {rss[-1]:.0f} MiB", flush=True)
    if len(rss) > 1:
        print(f"growth per round after the first: {(rss[-1] - rss[0]) / (len(rss) - 1):.1f} MiB")


if __name__ == "__main__":
    main()
