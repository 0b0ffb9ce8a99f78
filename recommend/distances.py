"""The distances between feature vectors that recommendations use: the one definition of their names (`DISTANCES`)
that the search, the bandit (its arms), the database (the recommendations table's `arm` column) and the plots all
read, and each distance's exact value."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

DISTANCES: tuple[str, ...] = ("manhattan", "euclidean", "cosine")
"""The distances a recommendation can use, in a fixed order; the bandit's arms are these names."""


def check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}")
    return distance


def distances(query: ArrayLike, candidates: ArrayLike, distance: str) -> NDArray[np.float64]:
    """Exact distance from `query` (d,) to each row of `candidates` (n, d), in float64: the reference that
    `NeighbourSearch` is tested against, and what it reports for the few rows it returns."""
    check_distance(distance)
    rows = np.asarray(candidates, dtype=np.float64)
    point = np.asarray(query, dtype=np.float64)
    difference = rows - point
    if distance == "manhattan":
        return np.abs(difference).sum(axis=1)
    if distance == "euclidean":
        return np.sqrt(np.einsum("ij,ij->i", difference, difference))
    norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(point)
    return 1.0 - rows @ point / np.where(norms == 0, 1.0, norms)
