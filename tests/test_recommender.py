"""Recommendations: each distance matches scipy's, the fast search finds exactly the nearest rows, only movies of
the predicted genres are candidates, the query itself is never returned, and results come nearest first."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from recommend import (
    DISTANCES,
    NeighbourSearch,
    candidate_decades,
    candidate_genres,
    candidate_mask,
    decade_mask,
    distances,
    genre_rerank,
    recommend,
)

SCIPY_NAMES = {"manhattan": "cityblock", "euclidean": "euclidean", "cosine": "cosine"}


@pytest.mark.parametrize("distance", DISTANCES)
def test_distances_agree_with_scipy(distance: str) -> None:
    rng = np.random.default_rng(0)
    candidates = rng.random((200, 100), dtype=np.float32)
    query = rng.random(100, dtype=np.float32)
    expected = cdist(query[np.newaxis], candidates, SCIPY_NAMES[distance])[0]
    np.testing.assert_allclose(distances(query, candidates, distance), expected, rtol=1e-4, atol=1e-5)


def test_cosine_distance_of_a_zero_vector_is_defined() -> None:
    assert np.isfinite(distances(np.zeros(3, np.float32), np.eye(3, dtype=np.float32), "cosine")).all()


def test_unknown_distance_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown distance 'chebyshev'"):
        distances(np.zeros(2), np.zeros((1, 2)), "chebyshev")


LABELS = np.array(
    [
        [1, 0, 0, 0, 0, 0],  # 0 action
        [0, 1, 0, 0, 0, 0],  # 1 comedy
        [1, 1, 0, 0, 0, 0],  # 2 action comedy
        [0, 0, 0, 1, 0, 0],  # 3 horror
        [0, 0, 1, 0, 0, 0],  # 4 drama
    ]
)


def test_candidates_are_movies_of_genres_above_one_half() -> None:
    assert candidate_mask(np.array([0.9, 0.2, 0.1, 0.6, 0, 0]), LABELS).tolist() == [1, 0, 1, 1, 0]
    assert candidate_mask(np.array([0.1, 0.4, 0.3, 0.2, 0, 0]), LABELS).tolist() == [0, 1, 1, 0, 0]  # most probable


def test_candidates_follow_the_models_own_thresholds() -> None:
    probabilities = np.array([0.3, 0.2, 0.1, 0.25, 0, 0])
    thresholds = np.array([0.27, 0.34, 0.39, 0.19, 0.24, 0.25])
    assert candidate_mask(probabilities, LABELS, thresholds).tolist() == [1, 0, 1, 1, 0]  # Action and Horror
    assert candidate_mask(probabilities, LABELS).tolist() == [1, 0, 1, 0, 0]  # none above 0.5: Action only


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_search_finds_exactly_the_nearest_rows(distance: str, threads: int) -> None:
    rng = np.random.default_rng(2)
    features = np.maximum(rng.standard_normal((5000, 100), dtype=np.float32), 0)
    search = NeighbourSearch(features, threads=threads)
    for query in features[:5] + rng.normal(0, 0.05, (5, 100)).astype(np.float32):
        expected = np.argsort(cdist(query[np.newaxis], features, SCIPY_NAMES[distance])[0], kind="stable")[:7]
        assert search.nearest(query, distance, k=7).tolist() == expected.tolist()


def test_search_distances_match_the_reference_for_every_row() -> None:
    rng = np.random.default_rng(3)
    features = rng.random((4500, 20), dtype=np.float32)  # more rows than one chunk, split over two threads
    query = rng.random(20, dtype=np.float32)
    search = NeighbourSearch(features, threads=2)
    np.testing.assert_allclose(
        search.approximate_distances(query, "manhattan"), distances(query, features, "manhattan"), rtol=1e-5
    )
    np.testing.assert_allclose(
        search.approximate_distances(query, "euclidean"), distances(query, features, "euclidean") ** 2, rtol=1e-4
    )
    np.testing.assert_allclose(
        search.approximate_distances(query, "cosine"), distances(query, features, "cosine"), atol=1e-5
    )


def test_search_keeps_to_the_allowed_rows_and_breaks_ties_by_row() -> None:
    features = np.array([[0.0], [1.0], [1.0], [2.0], [-1.0]], np.float32)
    search = NeighbourSearch(features)
    assert search.nearest(np.array([0.0]), "euclidean", k=3).tolist() == [0, 1, 2]  # 1, 2 and 4 tie: lower first
    allowed = np.array([False, False, True, True, False])
    assert search.nearest(np.array([0.0]), "manhattan", k=5, allowed=allowed).tolist() == [2, 3]
    assert search.nearest(np.array([0.0]), "manhattan", k=5, allowed=np.zeros(5, bool)).tolist() == []


def test_search_refuses_a_query_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="query has 3 features, the catalog 1"):
        NeighbourSearch(np.zeros((2, 1), np.float32)).nearest(np.zeros(3), "cosine")


def test_candidate_genres_fall_back_to_the_most_probable() -> None:
    assert candidate_genres(np.array([0.2, 0.7, 0.6, 0, 0, 0])).tolist() == [0, 1, 1, 0, 0, 0]
    assert candidate_genres(np.array([0.2, 0.1, 0.4, 0, 0, 0])).tolist() == [0, 0, 1, 0, 0, 0]


def test_recommend_returns_the_nearest_of_the_predicted_genres_without_the_query() -> None:
    rng = np.random.default_rng(1)
    features = rng.random((300, 8), dtype=np.float32)
    labels = np.zeros((300, 6), dtype=np.uint8)
    labels[:150, 0] = 1  # the first half are action movies, the rest comedies
    labels[150:, 1] = 1
    query_row = 10
    probabilities = np.array([0.8, 0.1, 0, 0, 0, 0])
    search = NeighbourSearch(features)
    for distance in DISTANCES:
        rows = recommend(search, labels, features[query_row], probabilities, distance, exclude_rows=[query_row])
        assert len(rows) == 5 and query_row not in rows and all(row < 150 for row in rows)
        found = distances(features[query_row], features, distance)
        others = [row for row in range(150) if row != query_row]
        assert rows == sorted(others, key=lambda row: found[row])[:5]


def test_recommend_widens_to_the_whole_catalog_when_a_genre_has_too_few_movies() -> None:
    features = np.arange(10, dtype=np.float32)[:, np.newaxis]
    labels = np.zeros((10, 6), dtype=np.uint8)
    labels[:2, 3] = 1
    search = NeighbourSearch(features)
    thriller = np.array([0, 0, 0, 0.9, 0, 0])
    assert recommend(search, labels, np.array([9.0], np.float32), thriller, "euclidean", shortlist=0) == [9, 8, 7, 6, 5]
    assert recommend(search, labels, np.array([9.0]), thriller, "cosine", exclude_rows=[9], shortlist=0) == [
        1,
        2,
        3,
        4,
        5,
    ]  # all on one ray: cosine distance 0 to every positive value, ties by row; row 0 is the zero vector
    # ordered again by genres, the genre's two movies come next after the query's own poster (row 9, distance 0)
    assert recommend(search, labels, np.array([9.0], np.float32), thriller, "euclidean") == [9, 1, 0, 8, 7]


def test_a_movie_of_the_querys_genres_is_chosen_over_a_slightly_nearer_one_of_other_genres() -> None:
    features = np.arange(1, 41, dtype=np.float32)[:, np.newaxis]  # row r at r + 1: nearer the query the lower r
    labels = np.zeros((40, 6), dtype=np.uint8)
    labels[:, 0] = 1  # every movie is an action movie, candidates all
    labels[[3, 30], 2] = 1  # rows 3 and 30 are dramas too
    search = NeighbourSearch(features)
    action_drama = np.array([0.6, 0, 0.6, 0, 0, 0])
    rows = recommend(search, labels, np.array([0.0]), action_drama, "manhattan")
    assert rows == [3, 0, 1, 2, 4]  # row 3, both genres, moves first; row 30 is beyond the 25 nearest
    assert 30 in recommend(search, labels, np.array([0.0]), action_drama, "manhattan", k=13, shortlist=40)
    assert recommend(search, labels, np.array([0.0]), action_drama, "manhattan", shortlist=5) == [0, 1, 2, 3, 4]


def test_the_querys_own_poster_stays_first_whatever_its_genres() -> None:
    features = np.arange(40, dtype=np.float32)[:, np.newaxis]
    labels = np.zeros((40, 6), dtype=np.uint8)
    labels[:, 0] = 1
    labels[1:, 2] = 1  # every movie but row 0 is a drama too
    search = NeighbourSearch(features)
    action_drama = np.array([0.6, 0, 0.6, 0, 0, 0])
    assert recommend(search, labels, np.array([0.0]), action_drama, "euclidean")[0] == 0  # the same poster
    assert recommend(search, labels, np.array([0.5]), action_drama, "euclidean")[0] == 1  # only near it


def test_genre_rerank_trades_nearness_for_the_querys_likely_genres() -> None:
    labels = np.array([[0, 1], [0, 1], [1, 0], [1, 1], [0, 1], [1, 0]], dtype=np.int8)
    shortlist = np.array([0, 1, 2, 3, 4, 5])  # nearest first
    # A query that reads as the first genre: its movies move up (rank / 6 less agreement: -0.57, -0.5, -0.1, ...).
    assert genre_rerank(shortlist, np.array([0.9, 0.1]), labels, k=3).tolist() == [2, 3, 0]
    # Both genres equally likely: the movie of both ties with the nearest, three places nearer; nearness breaks it.
    assert genre_rerank(shortlist, np.array([0.5, 0.5]), labels, k=3).tolist() == [0, 3, 1]
    # No genre probability at all: the order of nearness.
    assert genre_rerank(shortlist, np.zeros(2), labels, k=3).tolist() == [0, 1, 2]


def test_candidate_decades_are_the_most_probable_holding_half_the_probability() -> None:
    assert candidate_decades([0.1, 0.6, 0.3]).tolist() == [False, True, False]
    assert candidate_decades([0.2, 0.35, 0.45]).tolist() == [False, True, True]  # 0.45 alone is not half
    assert candidate_decades([0.25, 0.25, 0.25, 0.25]).tolist() == [True, True, False, False]  # ties: earlier first
    assert candidate_decades([0.2, 0.35, 0.45], mass=1.0).all()


def test_decade_mask_keeps_movies_of_the_likely_decades_and_never_unknown_years() -> None:
    catalog_decades = np.array([1980, 1990, 2000, 2010, -1, 1990])
    mask = decade_mask([0.1, 0.7, 0.1, 0.1], (1980, 1990, 2000, 2010), catalog_decades)
    assert mask.tolist() == [False, True, False, False, False, True]


def test_an_upload_of_a_catalog_poster_shows_its_own_movie_first_whatever_its_genres_and_decade() -> None:
    """Its own movie was looked for only among the candidates of the predicted genres and decades: an upload of a
    catalog poster whose predictions missed its movie's own (12 of 15 real posters tried) did not show it at all."""
    features = np.arange(40, dtype=np.float32)[:, np.newaxis]
    labels = np.zeros((40, 6), dtype=np.uint8)
    labels[:30, 0] = 1  # rows 0-29 are action movies, 30-39 thrillers
    catalog_decades = np.where(np.arange(40) % 2 == 0, 1990, 2000)
    search = NeighbourSearch(features)
    action = np.array([0.9, 0, 0, 0, 0, 0])
    nineties = decade_mask([0.8, 0.2], (1990, 2000), catalog_decades)
    for distance in ("manhattan", "euclidean"):  # on one-dimensional vectors every cosine distance is 0
        own_decade_missed = recommend(search, labels, np.array([21.0]), action, distance, era=nineties)
        assert own_decade_missed[0] == 21 and len(own_decade_missed) == 5
        assert all(row % 2 == 0 and row < 30 for row in own_decade_missed[1:])  # the rest as before
    assert recommend(search, labels, np.array([35.0]), action, "euclidean", era=nineties) == [35, 28, 26, 24, 22]
    assert recommend(search, labels, np.array([35.0]), action, "euclidean", exclude_rows=[35], era=nineties)[0] == 28
    near_but_not_it = recommend(search, labels, np.array([34.6]), action, "euclidean", era=nineties)
    assert near_but_not_it == [28, 26, 24, 22, 20]  # 0.4 from row 35: another poster, not its copy


def test_the_nearest_five_stay_as_they_are_beside_the_own_poster() -> None:
    """With a shortlist of at most k (the 'nearest five' of recommend-eval), the own poster found outside the
    candidates made the other four be ordered again by genre."""
    features = np.arange(40, dtype=np.float32)[:, np.newaxis]
    labels = np.zeros((40, 6), dtype=np.uint8)
    labels[:30, 0] = 1
    labels[::3, 1] = 1
    labels[29, 1] = 1
    search = NeighbourSearch(features)
    probabilities = np.array([0.9, 0.6, 0, 0, 0, 0])
    assert recommend(search, labels, np.array([35.0]), probabilities, "euclidean", shortlist=0) == [35, 36, 33, 39, 30]


def test_recommend_keeps_to_the_likely_decades_then_widens_to_the_genres_then_to_all() -> None:
    features = np.arange(40, dtype=np.float32)[:, np.newaxis]
    labels = np.zeros((40, 6), dtype=np.uint8)
    labels[:30, 0] = 1  # rows 0-29 are action movies
    catalog_decades = np.where(np.arange(40) % 2 == 0, 1990, 2000)  # even rows from the 1990s
    search = NeighbourSearch(features)
    action = np.array([0.9, 0, 0, 0, 0, 0])
    nineties = decade_mask([0.8, 0.2], (1990, 2000), catalog_decades)
    rows = recommend(search, labels, np.array([20.8]), action, "euclidean", exclude_rows=[20], era=nineties)
    assert rows == [22, 18, 24, 16, 26]  # action movies of the 1990s nearest to 20.8, never row 20 itself
    few = nineties & (np.arange(40) < 6)  # only three 1990s rows: too few, the decades are dropped
    assert recommend(search, labels, np.array([21.0]), action, "euclidean", era=few) == [21, 20, 22, 19, 23]
    assert recommend(search, labels, np.array([35.0]), np.array([0, 0, 0, 0, 0, 0.9]), "euclidean", era=few) == [
        35,
        34,
        36,
        33,
        37,
    ]  # no thriller at all: the whole catalog
