"""``DatasetInfo``: what ``zoo.datasets.load`` says about the data it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DATASET_KINDS = ("image", "sequence")
DATASET_TASKS = ("segmentation", "next_frame")


@dataclass(frozen=True)
class DatasetInfo:
    """Description of a loaded dataset.

    Attributes:
        name: registry name (``shapes``, ``digits``, ...).
        kind: ``image`` (elements x of shape (H, W, C)) or ``sequence`` (T, H, W, C).
        task: ``segmentation`` (y one-hot masks, or (..., 1) binary masks when
            ``n_classes == 1``) or ``next_frame`` (y the following frames, float in [0, 1]).
        input_shape: shape of one x, (H, W, C) or (T, H, W, C).
        n_classes: K, the size of y's last axis (1 for binary masks and frames).
        class_names: one name per class; class 0 is the background for K >= 2.
        train_size, val_size, test_size: number of samples in each split (test_size 0
            only for a third-party builder that gives no test arrays).
        labelled_fraction: fraction of training samples that keep their labels.
        options: every option the dataset was built with, defaults filled in.
    """

    name: str
    kind: str
    task: str
    input_shape: tuple[int, ...]
    n_classes: int
    class_names: list[str]
    train_size: int
    val_size: int
    test_size: int = 0
    labelled_fraction: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def target_shape(self) -> tuple[int, ...]:
        """Shape of one y: ``input_shape`` with the channel axis replaced by K."""
        return (*self.input_shape[:-1], self.n_classes)
