"""``SplitArrays``: the in-memory arrays a dataset builder hands to the pipeline.

Builders return labels compactly (class indices, not one-hot) so that large sets
stay small in memory; the pipeline expands them on the fly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zoo.datasets.info import DATASET_KINDS, DATASET_TASKS


@dataclass(frozen=True)
class SplitArrays:
    """Train, validation and test arrays plus what they mean.

    Attributes:
        x_train, x_val, x_test: inputs, (N, H, W, C) or (N, T, H, W, C); float32 in [0, 1]
            or uint8 in [0, 255] (the pipeline scales uint8 to [0, 1]).
        y_train, y_val, y_test: targets, either integer class-index masks with x's shape
            minus the channel axis (expanded to one-hot, or to (..., 1) when
            ``n_classes == 1``), or float32 with x's shape minus channels plus K
            (used as they are, e.g. next frames). An index of K or more (``IGNORED``,
            255, from a dataset's ``ignore_index``) marks an ignored pixel: it becomes an
            all-zero one-hot row, which the zoo's losses and metrics leave out.
        n_classes: K.
        class_names: K names (class 0 the background when K >= 2).
        kind: ``image`` or ``sequence``.
        task: ``segmentation`` or ``next_frame``.

    ``x_test``/``y_test`` may be left out (builders written before the test split
    existed): they then become empty arrays shaped like the validation ones, and
    ``DatasetInfo.test_size`` is 0.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int
    class_names: list[str]
    kind: str = "image"
    task: str = "segmentation"
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.x_test is None) != (self.y_test is None):
            raise ValueError("x_test and y_test must be given together")
        if self.x_test is None:
            # Frozen: fill the empty test split in through object.__setattr__.
            object.__setattr__(self, "x_test", self.x_val[:0])
            object.__setattr__(self, "y_test", self.y_val[:0])
        # Builders are ours, so a mismatch here is a bug, not bad user input;
        # still fail loudly and early rather than deep inside tf.data.
        if self.kind not in DATASET_KINDS or self.task not in DATASET_TASKS:
            raise ValueError(f"bad kind/task {self.kind!r}/{self.task!r}")
        rank = 4 if self.kind == "image" else 5
        for split, x, y in (("train", self.x_train, self.y_train),
                            ("val", self.x_val, self.y_val),
                            ("test", self.x_test, self.y_test)):
            if x.ndim != rank or len(x) != len(y):
                raise ValueError(
                    f"{split} arrays have shapes x{x.shape} y{y.shape}; "
                    f"expected x of rank {rank} and as many y"
                )
            if y.shape[1:rank - 1] != x.shape[1:rank - 1]:
                raise ValueError(f"{split} y{y.shape} does not match x{x.shape}")
            if x.shape[1:] != self.x_train.shape[1:]:
                raise ValueError(f"{split} x{x.shape} differs from train x{self.x_train.shape}")
        if len(self.class_names) != self.n_classes:
            raise ValueError(
                f"{len(self.class_names)} class names for {self.n_classes} classes"
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one x."""
        return tuple(int(d) for d in self.x_train.shape[1:])
