"""Which catalog movies a query poster is compared with (those of its predicted genres and of the decades it most
likely evokes, widened when too few are left), and the recommendation itself: the nearest of them."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recommend.approximate import ApproximateSearch
from recommend.search import NeighbourSearch

GENRE_THRESHOLD = 0.5
DECADE_MASS = 0.5
"""The candidates' decades: the query's most probable decades that together hold at least this probability."""


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
    search: NeighbourSearch | ApproximateSearch,
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
