"""Which catalog movies a query poster is compared with (those of its predicted genres and of the decades it most
likely evokes, widened when too few are left), and the recommendation itself: the nearest of them, ordered again by
how well their genres agree with the query's."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recommend.approximate import ApproximateSearch
from recommend.distances import distances
from recommend.search import NeighbourSearch

GENRE_THRESHOLD = 0.5
DECADE_MASS = 0.5
"""The candidates' decades: the query's most probable decades that together hold at least this probability."""
GENRE_SHORTLIST = 25
"""How many of the nearest candidates `recommend` orders again by genre agreement (`genre_rerank`); chosen on the
validation split, where 15, 25 and 50 gave genre shares 0.770, 0.794 and 0.825 against 0.741 for the nearest five,
25 keeping the same-decade share (bench/README.md)."""
SAME_POSTER = 0.01
"""The nearest catalog movie, nearer than this share of the distance to the median of the query's neighbourhood, is the
query's own poster (an upload of a catalog poster): it comes first whatever its genres and decade (`own_poster`)."""


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


def genre_rerank(shortlist: ArrayLike, probabilities: ArrayLike, labels: ArrayLike, k: int = 5) -> NDArray[np.intp]:
    """The `k` of `shortlist` (catalog rows, nearest first) with the lowest rank / len(shortlist) minus agreement,
    where a movie's agreement is the share of the query's genre probability that its true genres hold (0 to 1): a
    movie of all the query's likely genres may be chosen over one up to len(shortlist) places nearer that has none."""
    shortlist = np.asarray(shortlist, dtype=np.intp)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    agreement = (np.asarray(labels)[shortlist] * probabilities).sum(axis=1) / max(float(probabilities.sum()), 1e-9)
    score = np.arange(len(shortlist)) / max(len(shortlist), 1) - agreement
    return shortlist[np.argsort(score, kind="stable")][:k]


def recommend(
    search: NeighbourSearch | ApproximateSearch,
    labels: ArrayLike,
    features: ArrayLike,
    probabilities: ArrayLike,
    distance: str,
    k: int = 5,
    exclude_rows: ArrayLike = (),
    era: NDArray[np.bool_] | None = None,
    shortlist: int = GENRE_SHORTLIST,
    own_first: bool = True,
) -> list[int]:
    """Row numbers of `k` catalog posters of the predicted genres (above 0.5) and, given an `era` mask
    (decade_mask), of the query's likely decades, never one of `exclude_rows` (the query itself when it is a catalog
    movie): the `shortlist` nearest ordered again by genre agreement (genre_rerank), or the `k` nearest when
    `shortlist` is at most `k`. When fewer than `k` movies are left, the decades are dropped, then the genres (the
    whole catalog is searched). With `own_first`, the query's own poster (an upload of a catalog poster: `own_poster`)
    comes first, whatever its genres and decade (a baseline of random picks from the pool has none)."""
    excluded = np.asarray(exclude_rows, dtype=np.intp)
    genres = candidate_mask(probabilities, labels)
    anywhere = np.ones(len(search), dtype=bool)
    anywhere[excluded] = False
    for pool in ([genres & era] if era is not None else []) + [genres, anywhere]:
        allowed = pool & anywhere
        if np.count_nonzero(allowed) >= k:
            break
    nearest = search.nearest(features, distance, max(k, shortlist), allowed)
    own = own_poster(search, features, distance, anywhere, max(k, shortlist)) if own_first else None
    reranked = shortlist > k  # else the k nearest, as they are
    if own is not None:
        nearest = nearest[nearest != own]
        k -= 1
    chosen = genre_rerank(nearest, probabilities, labels, k) if reranked and len(nearest) > k else nearest[:k]
    return ([] if own is None else [own]) + chosen.tolist()


def own_poster(
    search: NeighbourSearch | ApproximateSearch,
    features: ArrayLike,
    distance: str,
    anywhere: NDArray[np.bool_],
    neighbourhood: int = GENRE_SHORTLIST,
) -> int | None:
    """The catalog row whose poster the query is, or None: the nearest of all `anywhere`, when it is nearer than
    SAME_POSTER of the distance to the median of the `neighbourhood` nearest (an exact copy is at distance 0; a poster
    like it, at about the others' distance). Searched apart from the candidates of the predicted genres and decades:
    an upload of a catalog poster whose predictions miss its own movie's still finds it."""
    nearest = search.nearest(features, distance, neighbourhood, anywhere)
    if not len(nearest):
        return None
    gaps = distances(features, search.vectors(nearest[[0, len(nearest) // 2]]), distance)
    return int(nearest[0]) if gaps[0] <= SAME_POSTER * gaps[1] else None
