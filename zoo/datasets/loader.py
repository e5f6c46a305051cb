"""``load``: build a registered dataset and wrap it in train and validation pipelines."""

from __future__ import annotations

import logging
from typing import Any

import tensorflow as tf

from zoo.datasets.info import DatasetInfo
from zoo.datasets.options import check_fraction, check_int
from zoo.datasets.pipeline import labelled_weights, make_dataset
from zoo.datasets.registry import DATASETS

log = logging.getLogger(__name__)


def load(
    name: str,
    *,
    batch_size: int | None = None,
    seed: int = 0,
    augment: bool = False,
    drop_remainder: bool = False,
    **options: Any,
) -> tuple[tf.data.Dataset, tf.data.Dataset, DatasetInfo]:
    """Load dataset ``name`` as train and validation ``tf.data.Dataset``s.

    Args:
        name: one of ``list_datasets()``.
        batch_size: None yields single elements; an int gives batches, the train
            set shuffled every epoch (seeded), both cached when they fit in memory
            and prefetched.
        seed: makes generation, splits, labelled subset, shuffling and
            augmentation reproducible; another seed gives other data.
        augment: random flips and 90-degree rotations (when H == W) of the
            training set, applied identically to x and y (and to every frame).
        drop_remainder: drop the last short batch (for stateful models).
        **options: dataset options, see ``describe_dataset(name).options``;
            every dataset takes ``labelled_fraction`` (default 1.0) and
            ``labelled_per_batch`` (default 0: off; n > 0: every training batch holds
            n labelled samples, repeated as needed, and ``batch_size - n`` unlabelled
            ones, an epoch being one pass over the unlabelled samples).

    Returns:
        ``(train_ds, val_ds, info)``. Elements are ``(x, y)``: x float32 in [0, 1]
        of ``info.input_shape``, y float32 of ``info.target_shape`` (one-hot when
        K >= 2). When ``labelled_fraction`` is passed (any value, 1.0 included)
        elements are ``(x, y, sample_weight)`` in both splits: weight 1.0 for
        labelled samples, 0.0 with an all-zero y for the others; validation is
        always fully labelled.

    Raises:
        ValueError: unknown dataset or option, or a bad option value.
    """
    spec, builder = DATASETS.get(name)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ValueError(
            f"dataset {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"allowed options: {', '.join(sorted(spec.options))}"
        )
    if batch_size is not None:
        batch_size = check_int(name, "batch_size", batch_size)
    seed = check_int(name, "seed", seed, minimum=0)
    merged = {**spec.options, **options}
    fraction = check_fraction(name, "labelled_fraction", merged.pop("labelled_fraction"),
                              high_open=False)
    weighted = "labelled_fraction" in options
    per_batch = check_int(name, "labelled_per_batch", merged.pop("labelled_per_batch"),
                          minimum=0)
    if per_batch and (batch_size is None or not weighted or per_batch >= batch_size):
        raise ValueError(
            f"dataset {name!r}: option labelled_per_batch={per_batch} needs labelled_fraction "
            f"and a batch_size above it (batch_size={batch_size})"
        )

    arrays = builder(seed=seed, **merged)
    n_train, n_val = len(arrays.x_train), len(arrays.x_val)
    log.info("dataset %s: %d train and %d val samples of shape %s, %d classes",
             name, n_train, n_val, arrays.input_shape, arrays.n_classes)

    common = {"n_classes": arrays.n_classes, "batch_size": batch_size,
              "drop_remainder": drop_remainder}
    train_ds = make_dataset(
        arrays.x_train, arrays.y_train,
        weights=labelled_weights(n_train, fraction, seed) if weighted else None,
        shuffle=batch_size is not None, augment=augment, seed=seed,
        labelled_per_batch=per_batch, **common,
    )
    val_ds = make_dataset(
        arrays.x_val, arrays.y_val,
        weights=labelled_weights(n_val, 1.0, seed) if weighted else None,
        **common,
    )
    info = DatasetInfo(
        name=name,
        kind=arrays.kind,
        task=arrays.task,
        input_shape=arrays.input_shape,
        n_classes=arrays.n_classes,
        class_names=list(arrays.class_names),
        train_size=n_train,
        val_size=n_val,
        labelled_fraction=fraction,
        options={**merged, "labelled_fraction": fraction, "labelled_per_batch": per_batch},
    )
    return train_ds, val_ds, info
