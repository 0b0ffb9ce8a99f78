"""Recommendations: each distance matches scipy's, only movies of the predicted genres are
candidates, the query itself is never returned, and results come nearest first."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from app.recommender import DISTANCES, candidate_mask, distances, recommend

SCIPY_NAMES = {"manhattan": "cityblock", "euclidean": "euclidean", "cosine": "cosine"}


@pytest.mark.parametrize("metric", DISTANCES)
def test_distances_agree_with_scipy(metric: str) -> None:
    rng = np.random.default_rng(0)
    candidates = rng.random((200, 100), dtype=np.float32)
    query = rng.random(100, dtype=np.float32)
    expected = cdist(query[np.newaxis], candidates, SCIPY_NAMES[metric])[0]
    np.testing.assert_allclose(distances(query, candidates, metric), expected, rtol=1e-4, atol=1e-5)


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


def test_recommend_returns_the_nearest_of_the_predicted_genres_without_the_query() -> None:
    rng = np.random.default_rng(1)
    features = rng.random((300, 8), dtype=np.float32)
    labels = np.zeros((300, 6), dtype=np.uint8)
    labels[:150, 0] = 1  # the first half are action movies, the rest comedies
    labels[150:, 1] = 1
    query_row = 10
    probabilities = np.array([0.8, 0.1, 0, 0, 0, 0])
    for metric in DISTANCES:
        rows = recommend(features[query_row], probabilities, features, labels, metric, exclude_row=query_row)
        assert len(rows) == 5 and query_row not in rows and all(row < 150 for row in rows)
        found = distances(features[query_row], features, metric)
        others = [row for row in range(150) if row != query_row]
        assert rows == sorted(others, key=lambda row: found[row])[:5]


def test_recommend_widens_to_the_whole_catalog_when_a_genre_has_too_few_movies() -> None:
    features = np.arange(10, dtype=np.float32)[:, np.newaxis]
    labels = np.zeros((10, 6), dtype=np.uint8)
    labels[:2, 3] = 1
    rows = recommend(np.array([9.0], np.float32), np.array([0, 0, 0, 0.9, 0, 0]), features, labels, "euclidean")
    assert rows == [9, 8, 7, 6, 5]
