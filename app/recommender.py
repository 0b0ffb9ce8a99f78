"""Five nearest catalog posters to a query poster, among movies of its predicted genres and of the decades it
most likely evokes.

Plain numpy, no web code: the views and the benchmarks call the same functions. `NeighbourSearch` holds the
catalog's feature vectors with what each distance needs precomputed, so one query costs one pass over them.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import ArrayLike, NDArray

DISTANCES: tuple[str, ...] = ("manhattan", "euclidean", "cosine")
GENRE_THRESHOLD = 0.5
DECADE_MASS = 0.5
"""The candidates' decades: the query's most probable decades that together hold at least this probability."""
CHUNK_ROWS = 2048  # rows per pass of the Manhattan distance: 2048 x 100 float32 = 800 KiB stays in cache


def check_distance(metric: str) -> str:
    if metric not in DISTANCES:
        raise ValueError(f"unknown distance {metric!r}; choose one of {', '.join(DISTANCES)}")
    return metric


def distances(query: ArrayLike, candidates: ArrayLike, metric: str) -> NDArray[np.float64]:
    """Exact distance from `query` (d,) to each row of `candidates` (n, d), in float64: the reference that
    `NeighbourSearch` is tested against, and what it reports for the few rows it returns."""
    check_distance(metric)
    rows = np.asarray(candidates, dtype=np.float64)
    point = np.asarray(query, dtype=np.float64)
    difference = rows - point
    if metric == "manhattan":
        return np.abs(difference).sum(axis=1)
    if metric == "euclidean":
        return np.sqrt(np.einsum("ij,ij->i", difference, difference))
    norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(point)
    return 1.0 - rows @ point / np.where(norms == 0, 1.0, norms)


class NeighbourSearch:
    """Exact k-nearest-neighbour search over a fixed matrix of feature vectors (n, d), for each of DISTANCES.

    Euclidean distances come from one matrix-vector product and the precomputed squared norms, cosine distances
    from one product with the precomputed unit vectors, Manhattan distances from a pass in cache-sized chunks,
    split over `threads` threads (default: up to 2, the cores of the machine we budget for).
    The k rows found are then ordered by their exact float64 distance (`distances`)."""

    def __init__(self, features: ArrayLike, threads: int | None = None) -> None:
        self.threads = max(1, threads if threads is not None else min(2, os.cpu_count() or 1))
        self._pool: ThreadPoolExecutor | None = None  # started on the first Manhattan query (after any fork)
        self._pool_lock = threading.Lock()
        self.features = np.ascontiguousarray(features, dtype=np.float32)
        if self.features.ndim != 2:
            raise ValueError(f"features must be a matrix (n, d), got shape {self.features.shape}")
        self.squared_norms = np.einsum("ij,ij->i", self.features, self.features)
        norms = np.sqrt(self.squared_norms)
        self.unit_vectors = self.features / np.where(norms == 0, 1.0, norms)[:, np.newaxis]

    def __len__(self) -> int:
        return len(self.features)

    def approximate_distances(self, query: ArrayLike, metric: str) -> NDArray[np.float32]:
        """(n,) float32 distances from `query` to every row: monotone in the exact distance up to rounding
        (euclidean: the squared distance)."""
        check_distance(metric)
        point = np.asarray(query, dtype=np.float32).reshape(-1)
        if point.shape[0] != self.features.shape[1]:
            raise ValueError(f"query has {point.shape[0]} features, the catalog {self.features.shape[1]}")
        if metric == "euclidean":
            return self.squared_norms - 2.0 * (self.features @ point) + point @ point
        if metric == "cosine":
            norm = np.linalg.norm(point)
            return 1.0 - self.unit_vectors @ (point / (norm if norm > 0 else 1.0))
        found = np.empty(len(self.features), np.float32)
        bounds = np.linspace(0, len(self.features), self.threads + 1).astype(int)
        parts = list(zip(bounds[:-1], bounds[1:], strict=True))
        if len(parts) > 1:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="manhattan")
            pending = [self._pool.submit(self._manhattan, point, start, stop, found) for start, stop in parts[1:]]
            self._manhattan(point, *parts[0], found)
            for job in pending:
                job.result()
        else:
            self._manhattan(point, 0, len(self.features), found)
        return found

    def _manhattan(self, point: NDArray[np.float32], start: int, stop: int, out: NDArray[np.float32]) -> None:
        """out[start:stop] = Manhattan distances of those rows, a cache-sized chunk at a time (numpy releases the
        GIL, so parts of the matrix run on several cores)."""
        chunk = np.empty((min(CHUNK_ROWS, max(stop - start, 1)), self.features.shape[1]), np.float32)
        for first in range(start, stop, len(chunk)):
            last = min(first + len(chunk), stop)
            part = chunk[: last - first]
            np.subtract(self.features[first:last], point, out=part)
            np.abs(part, out=part)
            part.sum(axis=1, out=out[first:last])

    def nearest(
        self, query: ArrayLike, metric: str, k: int = 5, allowed: NDArray[np.bool_] | None = None
    ) -> NDArray[np.intp]:
        """Rows of the `k` nearest vectors (among the `allowed` rows, a boolean mask, if given), nearest first;
        fewer when fewer rows are allowed. Ties go to the lower row."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        found = self.approximate_distances(query, metric)
        if allowed is not None:
            found = np.where(allowed, found, np.inf)
            k = min(k, int(np.count_nonzero(allowed)))
        k = min(k, len(found))
        if k == 0:
            return np.empty(0, np.intp)
        # a few more than k by the fast distance, so that rounding cannot drop one of the exact k nearest
        margin = min(len(found), k + 16)
        shortlist = np.argpartition(found, margin - 1)[:margin] if margin < len(found) else np.arange(len(found))
        shortlist = shortlist[np.isfinite(found[shortlist])]
        exact = distances(query, self.features[shortlist], metric)
        order = np.lexsort((shortlist, exact))
        return shortlist[order[:k]]


def candidate_genres(probabilities: ArrayLike, thresholds: ArrayLike | float = GENRE_THRESHOLD) -> NDArray[np.bool_]:
    """The genres whose movies are compared: those above the threshold (0.5), or, if none is, the most probable."""
    probabilities = np.asarray(probabilities)
    wanted = probabilities > thresholds
    if not wanted.any():
        wanted = np.arange(len(probabilities)) == np.argmax(probabilities)
    return wanted


def candidate_mask(
    probabilities: ArrayLike, labels: ArrayLike, thresholds: ArrayLike | float = GENRE_THRESHOLD
) -> NDArray[np.bool_]:
    """Catalog rows tagged with any of the candidate genres."""
    return (np.asarray(labels)[:, candidate_genres(probabilities, thresholds)] > 0).any(axis=1)


def candidate_decades(decade_probabilities: ArrayLike, mass: float = DECADE_MASS) -> NDArray[np.bool_]:
    """The most probable decades (positions in the model's decade classes) that together hold at least `mass`."""
    probabilities = np.asarray(decade_probabilities, dtype=np.float64)
    order = np.argsort(-probabilities, kind="stable")
    needed = int(np.searchsorted(np.cumsum(probabilities[order]), mass * probabilities.sum())) + 1
    return np.isin(np.arange(len(probabilities)), order[:needed])


def decade_mask(
    decade_probabilities: ArrayLike, decades: ArrayLike, catalog_decades: ArrayLike, mass: float = DECADE_MASS
) -> NDArray[np.bool_]:
    """Catalog rows whose (true) decade is one the query most likely evokes; `catalog_decades` holds each catalog
    movie's decade (e.g. 1990), or -1 when its year is unknown (never a candidate)."""
    wanted = np.asarray(decades)[candidate_decades(decade_probabilities, mass)]
    return np.isin(np.asarray(catalog_decades), wanted)


def recommend(
    search: NeighbourSearch,
    labels: ArrayLike,
    features: ArrayLike,
    probabilities: ArrayLike,
    metric: str,
    k: int = 5,
    exclude_rows: ArrayLike = (),
    era: NDArray[np.bool_] | None = None,
) -> list[int]:
    """Row numbers of the `k` nearest catalog posters of the predicted genres (above 0.5) and, given an
    `era` mask (decade_mask), of the query's likely decades; nearest first, never one of `exclude_rows` (the query
    itself when it is a catalog movie). When fewer than `k` movies are left, the decades are dropped, then the
    genres (the whole catalog is searched)."""
    excluded = np.asarray(exclude_rows, dtype=np.intp)
    genres = candidate_mask(probabilities, labels)
    everything = np.ones(len(search), dtype=bool)
    for allowed in ([genres & era] if era is not None else []) + [genres, everything]:
        allowed[excluded] = False
        if np.count_nonzero(allowed) >= k:
            break
    return search.nearest(features, metric, k, allowed).tolist()
