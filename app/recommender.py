"""Five nearest catalog posters to a query poster, among movies of its predicted genres.

Plain numpy, no web code: the views and the benchmarks call the same functions."""

from __future__ import annotations

import numpy as np

DISTANCES: tuple[str, ...] = ("manhattan", "euclidean", "cosine")
GENRE_THRESHOLD = 0.5


def distances(query: np.ndarray, candidates: np.ndarray, metric: str) -> np.ndarray:
    """Distance from `query` (d,) to each row of `candidates` (n, d), as (n,) float32."""
    difference = candidates - query
    if metric == "manhattan":
        return np.abs(difference).sum(axis=1)
    if metric == "euclidean":
        return np.sqrt(np.einsum("ij,ij->i", difference, difference))
    if metric == "cosine":
        norms = np.linalg.norm(candidates, axis=1) * np.linalg.norm(query)
        similarity = candidates @ query / np.where(norms == 0, 1, norms)
        return 1 - similarity
    raise ValueError(f"unknown distance {metric!r}; choose one of {', '.join(DISTANCES)}")


def candidate_mask(
    probabilities: np.ndarray, labels: np.ndarray, thresholds: np.ndarray | float = GENRE_THRESHOLD
) -> np.ndarray:
    """Catalog rows tagged with any genre predicted (probability above its threshold: 0.5 unless the model
    tuned its own), or, if none is, with the most probable one."""
    wanted = probabilities > thresholds
    if not wanted.any():
        wanted = np.arange(len(probabilities)) == np.argmax(probabilities)
    return (labels[:, wanted] > 0).any(axis=1)


def recommend(
    features: np.ndarray,
    probabilities: np.ndarray,
    catalog_features: np.ndarray,
    catalog_labels: np.ndarray,
    metric: str,
    k: int = 5,
    exclude_row: int | None = None,
    thresholds: np.ndarray | float = GENRE_THRESHOLD,
) -> list[int]:
    """Row numbers of the `k` nearest catalog posters of the predicted genres, nearest first."""
    mask = candidate_mask(probabilities, catalog_labels, thresholds)
    if exclude_row is not None:
        mask[exclude_row] = False
    rows = np.flatnonzero(mask)
    if len(rows) < k:  # too few movies of those genres: compare with the whole catalog
        rows = np.delete(np.arange(len(catalog_features)), [] if exclude_row is None else [exclude_row])
    found = distances(features, catalog_features[rows], metric)
    nearest = np.argpartition(found, k - 1)[:k] if len(found) > k else np.arange(len(found))
    return rows[nearest[np.argsort(found[nearest], kind="stable")]].tolist()
