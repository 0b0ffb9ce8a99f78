"""Loads the MULAN multi-label benchmark data of ../shared/benchmarks/multilabel (see its README): the header-less
scene and yeast ARFF files (features first, labels in the last columns), in the standard MULAN train/test split
or, for scene, in the CLEMS authors' split (the 2407 rows of train then test; first 1203 train, last 1204 test).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

LABEL_COUNTS = {"scene": 6, "yeast": 14}
AUTHORS_TRAIN_ROWS = 1203
AUTHORS_SCENE_LABELS = "csmlc_scene_data.y"


@dataclass(frozen=True)
class Split:
    """A data set's training and test rows: features X (n, d) and 0/1 labels Y (n, K)."""

    name: str
    x_train: NDArray[np.float64]
    y_train: NDArray[np.int64]
    x_test: NDArray[np.float64]
    y_test: NDArray[np.int64]


def load_headerless_arff(path: Path, n_labels: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Features and labels of a header-less ARFF file of comma-separated rows, labels in the last n_labels columns."""
    rows = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    return rows[:, :-n_labels], rows[:, -n_labels:].astype(np.int64)


def mulan_split(data_dir: Path, name: str) -> Split:
    """The standard MULAN split of `name` ("scene" or "yeast"): {name}-train.arff and {name}-test.arff."""
    x_train, y_train = load_headerless_arff(data_dir / f"{name}-train.arff", LABEL_COUNTS[name])
    x_test, y_test = load_headerless_arff(data_dir / f"{name}-test.arff", LABEL_COUNTS[name])
    return Split(f"{name}_mulan_split", x_train, y_train, x_test, y_test)


def scene_authors_split(data_dir: Path) -> Split:
    """scene as the CLEMS authors split it: scene-train then scene-test (2407 rows, the order of
    csmlc_scene_data.y, which is checked when present), the first 1203 rows for training, the last 1204 for test."""
    mulan = mulan_split(data_dir, "scene")
    features = np.vstack([mulan.x_train, mulan.x_test])
    labels = np.vstack([mulan.y_train, mulan.y_test])
    authors_labels_path = data_dir / AUTHORS_SCENE_LABELS
    if authors_labels_path.is_file():
        authors_labels = np.loadtxt(authors_labels_path, dtype=np.int64, ndmin=2)
        if not np.array_equal(authors_labels, labels):
            raise ValueError(f"{authors_labels_path} does not match the labels of scene-train + scene-test")
    return Split(
        "scene_authors_split",
        features[:AUTHORS_TRAIN_ROWS],
        labels[:AUTHORS_TRAIN_ROWS],
        features[AUTHORS_TRAIN_ROWS:],
        labels[AUTHORS_TRAIN_ROWS:],
    )
