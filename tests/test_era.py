"""The era heads: fitted in closed form on pooled frozen outputs, folded into dense layers."""

from __future__ import annotations

import numpy as np

from model.era import era_pool, fit_era_heads, predict_era
from model.network import DECADES_LAYER, RATING_LAYER, YEAR_LAYER


def pools_with_an_era(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pools on a scale far from standard (as ReLU activations are): column 0 grows with the year, column 1 with the
    rating, and columns 2-8 each fire for one decade."""
    rng = np.random.default_rng(seed)
    years = rng.integers(1950, 2020, rows).astype(float)
    ratings = rng.uniform(3, 9, rows)
    pools = rng.gamma(2.0, 40.0, (rows, 16))
    pools[:, 0] += (years - 1950) * 3
    pools[:, 1] += ratings * 20
    pools[np.arange(rows), 2 + ((years - 1950) // 10).astype(int)] += 100
    return pools.astype(np.float32), years, ratings


def test_era_heads_learn_decade_year_and_rating_from_the_pool() -> None:
    pools, years, ratings = pools_with_an_era(2000)
    decades = tuple(range(1950, 2020, 10))
    heads = fit_era_heads(pools[:1500], years[:1500], ratings[:1500], decades)
    predicted = predict_era(pools[1500:], heads)
    decade = np.array(decades)[predicted[DECADES_LAYER].argmax(axis=1)]
    assert (decade == years[1500:] // 10 * 10).mean() > 0.35  # chance is 1/7
    assert np.abs(predicted[YEAR_LAYER][:, 0] - years[1500:]).mean() < 13  # the mean year's error is about 17
    assert np.corrcoef(predicted[RATING_LAYER][:, 0], ratings[1500:])[0, 1] > 0.5
    np.testing.assert_allclose(predicted[DECADES_LAYER].sum(axis=1), 1, rtol=1e-5)


def test_unknown_years_and_ratings_are_left_out_and_unseen_decades_get_no_probability() -> None:
    pools, years, ratings = pools_with_an_era(600, seed=1)
    years[::3] = np.nan
    ratings[1::3] = np.nan
    decades = (1940, *range(1950, 2020, 10))  # no training movie is from the 1940s
    heads = fit_era_heads(pools, years, ratings, decades)
    predicted = predict_era(pools, heads)
    assert all(np.isfinite(values).all() for values in predicted.values())
    assert predicted[DECADES_LAYER][:, 0].max() < 1e-6


def test_two_decades_still_give_a_probability_each() -> None:
    pools, years, ratings = pools_with_an_era(400, seed=2)
    years = np.where(years < 1985, 1975.0, 1995.0)
    pools[:, 0] = (years - 1975) + np.random.default_rng(3).normal(0, 5, len(years))
    heads = fit_era_heads(pools, years, ratings, (1970, 1990))
    probabilities = predict_era(pools, heads)[DECADES_LAYER]
    assert probabilities.shape == (400, 2)
    assert (np.array([1970, 1990])[probabilities.argmax(axis=1)] == years // 10 * 10).mean() > 0.8


def test_the_era_pool_is_the_mean_then_the_maximum_over_the_image() -> None:
    outputs = np.random.default_rng(4).random((3, 4, 4, 5)).astype(np.float16)
    pooled = era_pool(outputs)
    assert pooled.shape == (3, 10) and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled[:, :5], outputs.astype(np.float32).mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(pooled[:, 5:], outputs.astype(np.float32).max(axis=(1, 2)), rtol=1e-6)
