"""The heads on the frozen pool: fitted in closed form on pooled frozen outputs, folded into dense layers."""

from __future__ import annotations

import numpy as np

from model.frozen_heads import (
    fit_era_heads,
    fit_genre_probe,
    frozen_pool,
    predict_era,
    stack_genres,
    stacked_genre_layer,
)
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
    pools, years, ratings = pools_with_an_era(2000, seed=2)
    years = np.where(years < 1985, 1975.0, 1995.0)
    pools[:, :8] += (years[:, None] - 1975) * 5  # one decade lights eight columns
    heads = fit_era_heads(pools, years, ratings, (1970, 1990))
    probabilities = predict_era(pools, heads)[DECADES_LAYER]
    assert probabilities.shape == (2000, 2)
    assert (np.array([1970, 1990])[probabilities.argmax(axis=1)] == years // 10 * 10).mean() > 0.8


def test_the_frozen_pool_is_the_mean_then_the_maximum_over_the_image() -> None:
    outputs = np.random.default_rng(4).random((3, 4, 4, 5)).astype(np.float16)
    pooled = frozen_pool(outputs)
    assert pooled.shape == (3, 10) and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled[:, :5], outputs.astype(np.float32).mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(pooled[:, 5:], outputs.astype(np.float32).max(axis=(1, 2)), rtol=1e-6)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-logits))


def test_the_genre_probe_ranks_genres_that_the_pool_carries() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    labels = (rng.random((1200, 3)) < [0.5, 0.2, 0.0]).astype(np.uint8)  # the third genre: never seen
    pools = rng.gamma(2.0, 40.0, (1200, 12)).astype(np.float32)
    pools[:, :2] += labels[:, :2] * 150
    kernel, bias = fit_genre_probe(pools[:900], labels[:900])
    logits = pools[900:] @ kernel + bias
    for genre in (0, 1):
        assert roc_auc_score(labels[900:, genre], logits[:, genre]) > 0.8
    assert sigmoid(logits[:, 2]).max() < 0.01  # a genre no training poster has gets (next to) no probability


def test_stacking_weighs_the_better_head_more_and_folds_into_one_layer() -> None:
    rng = np.random.default_rng(6)
    labels = (rng.random((800, 2)) < 0.3).astype(np.uint8)
    signal = labels * 2.0 - 1.0
    tuned = signal + rng.normal(0, 2.0, labels.shape)  # a weak head
    probe = signal + rng.normal(0, 0.7, labels.shape)  # a strong one
    stacking = stack_genres(tuned, probe, labels)
    assert stacking.shape == (2, 3) and (stacking[:, 1] > stacking[:, 0]).all()
    few = labels.copy()
    few[:, 1] = 0
    few[:5, 1] = 1  # too few held-out posters with the genre: the tuned head alone
    assert stack_genres(tuned, probe, few)[1].tolist() == [1.0, 0.0, 0.0]

    features, pools = rng.random((4, 3)), rng.random((4, 5))
    tuned_layer = (rng.normal(size=(3, 2)), rng.normal(size=2))
    probe_layer = (rng.normal(size=(5, 2)), rng.normal(size=2))
    kernel, bias = stacked_genre_layer(tuned_layer, probe_layer, stacking)
    a, b, c = stacking.T
    expected = a * (features @ tuned_layer[0] + tuned_layer[1]) + b * (pools @ probe_layer[0] + probe_layer[1]) + c
    np.testing.assert_allclose(np.hstack([features, pools]) @ kernel + bias, expected, rtol=1e-4, atol=1e-4)


def test_stacking_takes_each_genres_base_rate_from_the_larger_sample_when_given_one() -> None:
    """The held-out posters have a genre 40 % of the time, the larger labelled sample 30 %: the stacked probabilities
    average 30 % over those held-out posters, and the two heads keep the weights the held-out posters gave them."""
    rng = np.random.default_rng(8)
    labels = (rng.random((600, 2)) < [0.4, 0.1]).astype(np.uint8)
    signal = labels * 2.0 - 1.0
    tuned, probe = signal + rng.normal(0, 2.0, labels.shape), signal + rng.normal(0, 1.0, labels.shape)
    as_held_out = stack_genres(tuned, probe, labels)
    anchored = stack_genres(tuned, probe, labels, base_rates=np.array([0.3, 0.1]))
    np.testing.assert_allclose(anchored[:, :2], as_held_out[:, :2])
    a, b, c = anchored.T
    mean_probability = sigmoid(a * tuned + b * probe + c).mean(axis=0)
    np.testing.assert_allclose(mean_probability, [0.3, 0.1], atol=1e-6)
    held_out_mean = sigmoid(as_held_out[:, 0] * tuned + as_held_out[:, 1] * probe + as_held_out[:, 2]).mean(axis=0)
    assert abs(held_out_mean[0] - labels[:, 0].mean()) < 0.01  # without base rates: the held-out posters' own share
