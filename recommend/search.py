"""Exact k-nearest-neighbour search over the catalog's feature vectors, by any of the distances (`DISTANCES`)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recommend.distances import check_distance, distances

CHUNK_ROWS = 2048  # rows per pass of the Manhattan distance: 2048 x 100 float32 = 800 KiB stays in cache


def smallest(values: NDArray[np.floating], count: int) -> NDArray[np.intp]:
    """Positions of the `count` smallest `values` and of every value tied with the largest of them, in position order:
    a selection that keeps only `count` would choose among tied rows at random, and the ties are to go to the lower
    row (duplicate posters give tied vectors)."""
    if count >= len(values):
        return np.arange(len(values))
    bound = np.partition(values, count - 1)[count - 1]
    if np.isnan(bound):  # fewer than `count` values are numbers (NaN sorts last): all of those
        return np.flatnonzero(~np.isnan(values))
    return np.flatnonzero(values <= bound)


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

    def vectors(self, rows: ArrayLike) -> NDArray[np.float32]:
        """The feature vectors of catalog `rows`."""
        return self.features[np.asarray(rows, dtype=np.intp)]

    def approximate_distances(self, query: ArrayLike, distance: str) -> NDArray[np.float32]:
        """(n,) float32 distances from `query` to every row: monotone in the exact distance up to rounding
        (euclidean: the squared distance)."""
        check_distance(distance)
        point = np.asarray(query, dtype=np.float32).reshape(-1)
        if point.shape[0] != self.features.shape[1]:
            raise ValueError(f"query has {point.shape[0]} features, the catalog {self.features.shape[1]}")
        if distance == "euclidean":
            return self.squared_norms - 2.0 * (self.features @ point) + point @ point
        if distance == "cosine":
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
        self, query: ArrayLike, distance: str, k: int = 5, allowed: NDArray[np.bool_] | None = None
    ) -> NDArray[np.intp]:
        """Rows of the `k` nearest vectors (among the `allowed` rows, a boolean mask, if given), nearest first;
        fewer when fewer rows are allowed. Ties go to the lower row."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        found = self.approximate_distances(query, distance)
        if allowed is not None:
            found = np.where(allowed, found, np.inf)
            k = min(k, int(np.count_nonzero(allowed)))
        k = min(k, len(found))
        if k == 0:
            return np.empty(0, np.intp)
        # a few more than k by the fast distance, so that rounding cannot drop one of the exact k nearest
        shortlist = smallest(found, k + 16)
        shortlist = shortlist[np.isfinite(found[shortlist])]
        exact = distances(query, self.features[shortlist], distance)
        order = np.lexsort((shortlist, exact))
        return shortlist[order[:k]]
