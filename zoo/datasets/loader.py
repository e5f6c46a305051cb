"""``load_splits`` (and ``load``): build a registered dataset and wrap its splits in pipelines."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from zoo.datasets.arrays import SplitArrays
from zoo.datasets.info import DatasetInfo
from zoo.datasets.options import check_fraction, check_int
from zoo.datasets.pipeline import labelled_weights, make_dataset
from zoo.datasets.registry import COMMON_OPTIONS, DATASETS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Splits:
    """What ``load_splits`` returns.

    Attributes:
        train: the training ``tf.data.Dataset`` (shuffled and augmented per epoch
            when batched / asked to, semi-supervised weights when asked to).
        val, test: fixed, fully labelled datasets in stored order, with the same
            element structure as each other ((x, y) or (x, y, weight 1.0)).
        info: sizes of all three splits, shapes, classes, options.
    """

    train: tf.data.Dataset
    val: tf.data.Dataset
    test: tf.data.Dataset
    info: DatasetInfo


def load(
    name: str,
    *,
    batch_size: int | None = None,
    seed: int = 0,
    augment: bool = False,
    drop_remainder: bool = False,
    initial_epoch: int = 0,
    **options: Any,
) -> tuple[tf.data.Dataset, tf.data.Dataset, DatasetInfo]:
    """Load dataset ``name`` as train and validation ``tf.data.Dataset``s.

    The same as ``load_splits`` without the test split: ``(train, val, info)``.
    """
    splits = load_splits(name, batch_size=batch_size, seed=seed, augment=augment,
                         drop_remainder=drop_remainder, initial_epoch=initial_epoch, **options)
    return splits.train, splits.val, splits.info


def build_arrays(name: str, *, seed: int = 0, **options: Any) -> SplitArrays:
    """The arrays ``load_splits(name, seed=seed, **options)`` builds its pipelines from.

    Deterministic in ``(name, seed, options)``; the pipeline-only options
    (``labelled_fraction``, ``labelled_per_batch``) are ignored here. Pass the result
    back as ``load_splits(..., arrays=...)`` to build a dataset once and share it.
    """
    spec, builder = DATASETS.get(name)
    merged = {**spec.options, **options}
    for key in COMMON_OPTIONS:
        merged.pop(key, None)
    return builder(seed=check_int(name, "seed", seed, minimum=0), **merged)


def load_splits(
    name: str,
    *,
    batch_size: int | None = None,
    seed: int = 0,
    augment: bool = False,
    drop_remainder: bool = False,
    initial_epoch: int = 0,
    arrays: SplitArrays | None = None,
    **options: Any,
) -> Splits:
    """Load dataset ``name`` as train, validation and test ``tf.data.Dataset``s.

    The test split is held out: nothing in training or model selection should
    read it. Every sample is in exactly one split. The test split is fixed by the
    dataset's ``split_seed`` option alone (the same for every ``seed``); ``seed``
    draws training and validation (see each dataset's ``test``/``test_fraction``/
    ``test_digits`` options).

    Args:
        name: one of ``list_datasets()``.
        batch_size: None yields single elements; an int gives batches, the train
            set shuffled every epoch (seeded), all prefetched.
        seed: makes generation, splits, labelled subset, shuffling and
            augmentation reproducible; another seed gives other data.
        augment: random flips and 90-degree rotations (when H == W) of the
            training set, applied identically to x and y (and to every frame).
        drop_remainder: drop the last short batch (for stateful models).
        initial_epoch: the epoch (from 0) the train set's first iteration gives;
            shuffling and augmentation are functions of (seed, epoch), so a run
            resumed with ``initial_epoch=k`` sees in epoch j >= k exactly what an
            uninterrupted run sees in epoch j.
        **options: dataset options, see ``describe_dataset(name).options``;
            every dataset takes ``labelled_fraction`` (default 1.0) and
            ``labelled_per_batch`` (default 0: off; n > 0: every training batch holds
            n labelled samples, repeated as needed, and ``batch_size - n`` unlabelled
            ones, an epoch being one pass over the unlabelled samples; without a
            batch_size there is nothing to mix and single elements come as usual).
        arrays: ``build_arrays(name, seed=seed, **options)`` made earlier (e.g. cached
            by a sweep); None builds them.

    Returns:
        ``Splits(train, val, test, info)``. Elements are ``(x, y)``: x float32 in
        [0, 1] of ``info.input_shape``, y float32 of ``info.target_shape`` (one-hot
        when K >= 2). When ``labelled_fraction`` is passed (any value, 1.0 included)
        elements are ``(x, y, sample_weight)`` in every split: weight 1.0 for
        labelled samples, 0.0 with an all-zero y for the others; validation and
        test are always fully labelled.

    Raises:
        ValueError: unknown dataset or option, or a bad option value (one line,
            naming the dataset and the option).
    """
    arrays, checked = _checked_arrays(name, batch_size, seed, initial_epoch, arrays, options)
    info = _info(name, arrays, checked)
    common = {"n_classes": arrays.n_classes, "batch_size": checked.batch_size,
              "drop_remainder": drop_remainder}
    train_ds = make_dataset(
        arrays.x_train, arrays.y_train,
        weights=(labelled_weights(info.train_size, checked.fraction, checked.seed)
                 if checked.weighted else None),
        shuffle=checked.batch_size is not None, augment=augment, seed=checked.seed,
        labelled_per_batch=checked.per_batch, initial_epoch=checked.initial_epoch, **common,
    )
    held_out = {
        split: make_dataset(
            getattr(arrays, f"x_{split}"), getattr(arrays, f"y_{split}"),
            weights=labelled_weights(getattr(info, f"{split}_size"), 1.0, checked.seed)
            if checked.weighted else None, **common)
        for split in ("val", "test")
    }
    return Splits(train_ds, held_out["val"], held_out["test"], info)


def dataset_info(name: str, *, seed: int = 0, **options: Any) -> DatasetInfo:
    """What ``load_splits(name, seed=seed, **options)`` would say of the dataset (sizes,
    shapes, classes, options), without building its pipelines: the same checks, the same
    ``ValueError`` for a bad option. The arrays are built (a missing file fails here)."""
    arrays, checked = _checked_arrays(name, None, seed, 0, None, options)
    return _info(name, arrays, checked)


@dataclass(frozen=True)
class _Checked:
    """``load_splits``' arguments once checked; ``merged``: the dataset's options over its
    defaults, without the common ones."""

    batch_size: int | None
    seed: int
    initial_epoch: int
    fraction: float
    weighted: bool
    per_batch: int
    merged: dict[str, Any]


def _checked_arrays(name: str, batch_size: int | None, seed: int, initial_epoch: int,
                    arrays: SplitArrays | None, options: dict[str, Any]
                    ) -> tuple[SplitArrays, _Checked]:
    """``load_splits``' option checks, then its arrays (built unless given)."""
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
    initial_epoch = check_int(name, "initial_epoch", initial_epoch, minimum=0)
    merged = {**spec.options, **options}
    fraction = check_fraction(name, "labelled_fraction", merged.pop("labelled_fraction"),
                              high_open=False)
    weighted = "labelled_fraction" in options
    per_batch = check_int(name, "labelled_per_batch", merged.pop("labelled_per_batch"),
                          minimum=0)
    # Without a batch size (spec validation, single elements) there is nothing to mix,
    # so only the need for labelled_fraction is checked then.
    if per_batch and (not weighted or (batch_size is not None and per_batch >= batch_size)):
        raise ValueError(
            f"dataset {name!r}: option labelled_per_batch={per_batch} needs labelled_fraction "
            f"and a batch_size above it (batch_size={batch_size})"
        )

    if arrays is None:
        arrays = builder(seed=seed, **merged)
    return arrays, _Checked(batch_size, seed, initial_epoch, fraction, weighted, per_batch,
                            merged)


def _info(name: str, arrays: SplitArrays, checked: _Checked) -> DatasetInfo:
    """The ``DatasetInfo`` of ``arrays`` (logged once, as the dataset is loaded)."""
    sizes = {split: len(getattr(arrays, f"x_{split}")) for split in ("train", "val", "test")}
    log.info("dataset %s: %d train, %d val and %d test samples of shape %s, %d classes",
             name, sizes["train"], sizes["val"], sizes["test"], arrays.input_shape,
             arrays.n_classes)
    return DatasetInfo(
        name=name,
        kind=arrays.kind,
        task=arrays.task,
        input_shape=arrays.input_shape,
        n_classes=arrays.n_classes,
        class_names=list(arrays.class_names),
        train_size=sizes["train"],
        val_size=sizes["val"],
        test_size=sizes["test"],
        labelled_fraction=checked.fraction,
        options={**checked.merged, "labelled_fraction": checked.fraction,
                 "labelled_per_batch": checked.per_batch},
    )
