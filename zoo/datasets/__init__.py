"""Datasets as ``tf.data`` pipelines: synthetic, scikit-learn digits, your folder or .npz.

>>> import zoo
>>> train_ds, val_ds, info = zoo.datasets.load("shapes", batch_size=16, height=32, width=32)
>>> info.input_shape, info.n_classes
((32, 32, 3), 4)
>>> splits = zoo.datasets.load_splits("shapes", batch_size=16, height=32, width=32)
>>> splits.info.train_size, splits.info.val_size, splits.info.test_size
(512, 128, 128)

``load_splits`` adds the held-out test split, which training and model selection
never read; ``load`` keeps returning ``(train, val, info)``.

Each dataset is one module registering a builder with ``@register_dataset``;
``load`` turns the builder's arrays into pipelines (see ``pipeline``). Importing
this package registers every dataset.
"""

from zoo.datasets import digits, folder, moving_digits, npz, shapes  # noqa: F401  (registration)
from zoo.datasets.arrays import SplitArrays
from zoo.datasets.info import DatasetInfo
from zoo.datasets.loader import Splits, build_arrays, dataset_info, load, load_splits
from zoo.datasets.registry import (
    DATASETS,
    DatasetSpec,
    describe_dataset,
    list_datasets,
    register_dataset,
)

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetSpec",
    "SplitArrays",
    "Splits",
    "build_arrays",
    "dataset_info",
    "describe_dataset",
    "list_datasets",
    "load",
    "load_splits",
    "register_dataset",
]
