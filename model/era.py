"""The era heads: decade, year and IMDb rating fitted in closed form on the era pool (the frozen part's output
averaged and maximised over the image), then folded into the network's dense layers.

Linear models on frozen ImageNet features learn the era better than heads trained with the genres on the
fine-tuned feature vector, and leave the genres as good as a genre-only model (bench/README.md, "What a poster
evokes"); scikit-learn fits them in seconds from the cached frozen outputs."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from model.network import DECADES_LAYER, RATING_LAYER, YEAR_LAYER

DECADE_L2 = 0.2
"""L2 penalty of the decade's logistic regression on standardised pools, against its mean log-loss per poster (the
best of 0.06, 0.2 and 0.6 on the real posters' validation split, decade accuracy 0.496, 0.505 and 0.502)."""
REGRESSION_L2 = 0.06
"""L2 penalty of the year's and rating's ridge regressions, against their mean squared error per poster (of 0.006, 0.06
and 0.6 there, the year's error is lowest at 0.006 and 0.06, the rating's Spearman highest at 0.6)."""
POOL_CHUNK = 512

EraWeights = dict[str, tuple[np.ndarray, np.ndarray]]
"""Kernel (pool size, outputs) and bias (outputs,) of each era head, as Keras's Dense layers hold them."""


def era_pool(frozen_outputs: Iterable[np.ndarray] | np.ndarray) -> np.ndarray:
    """(n, h, w, c) frozen outputs (memory-mapped float16 is fine) -> (n, 2c) float32: the mean over the image, then
    the maximum, as the network's era_pool layer concatenates them."""
    chunks = []
    for start in range(0, len(frozen_outputs), POOL_CHUNK):
        chunk = np.asarray(frozen_outputs[start : start + POOL_CHUNK], dtype=np.float32)
        chunks.append(np.concatenate([chunk.mean(axis=(1, 2)), chunk.max(axis=(1, 2))], axis=1))
    if not chunks:
        return np.zeros((0, 2 * np.shape(frozen_outputs)[-1]), np.float32)
    return np.concatenate(chunks)


def fit_era_heads(pools: np.ndarray, years: np.ndarray, ratings: np.ndarray, decades: tuple[int, ...]) -> EraWeights:
    """Fit the decade (multinomial logistic regression over `decades`), year and rating (ridge regressions) on
    standardised `pools`; rows whose year or rating is NaN are left out of that head. The standardisation is folded
    into each kernel, so the heads read the raw era pool."""
    from sklearn.linear_model import LogisticRegression, Ridge

    mean = pools.mean(axis=0)
    scale = pools.std(axis=0)
    scale[scale == 0] = 1.0
    standardised = (pools - mean) / scale
    known_year = ~np.isnan(years)
    known_decade = known_year & np.isin(np.where(known_year, years // 10 * 10, -1), decades)
    decade_kernel = np.zeros((pools.shape[1], len(decades)))
    decade_bias = np.zeros(len(decades))
    decade_rows = (years[known_decade] // 10 * 10).astype(int)
    if len(np.unique(decade_rows)) > 1:
        classifier = LogisticRegression(C=1 / (DECADE_L2 * known_decade.sum()), max_iter=300)
        classifier.fit(standardised[known_decade], decade_rows)
        columns = [decades.index(int(decade)) for decade in classifier.classes_]
        coefficients = classifier.coef_ if len(columns) > 2 else np.vstack([-classifier.coef_, classifier.coef_]) / 2
        intercepts = classifier.intercept_ if len(columns) > 2 else np.array([-1, 1]) * classifier.intercept_[0] / 2
        decade_kernel[:, columns] = coefficients.T
        decade_bias[columns] = intercepts
        decade_bias[[column for column in range(len(decades)) if column not in columns]] = -30.0  # never seen
    heads = {DECADES_LAYER: (decade_kernel, decade_bias)}
    for head, values in ((YEAR_LAYER, years), (RATING_LAYER, ratings)):
        known = ~np.isnan(values)
        kernel, bias = np.zeros((pools.shape[1], 1)), np.array([np.nanmean(values) if known.any() else 0.0])
        if known.sum() > 1:
            ridge = Ridge(alpha=REGRESSION_L2 * known.sum()).fit(standardised[known], values[known])
            kernel, bias = ridge.coef_[:, None], np.array([ridge.intercept_])
        heads[head] = (kernel, bias)
    return {
        head: ((kernel / scale[:, None]).astype(np.float32), (bias - mean / scale @ kernel).astype(np.float32))
        for head, (kernel, bias) in heads.items()
    }


def predict_era(pools: np.ndarray, heads: EraWeights) -> dict[str, np.ndarray]:
    """What the era heads give for `pools`, by head, as the network would (softmax over the decades)."""
    outputs = {head: pools @ kernel + bias for head, (kernel, bias) in heads.items()}
    logits = outputs[DECADES_LAYER] - outputs[DECADES_LAYER].max(axis=1, keepdims=True)
    outputs[DECADES_LAYER] = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return outputs
