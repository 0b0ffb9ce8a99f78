"""Heads fitted in closed form on the frozen pool (the frozen part's output averaged and maximised over the image),
then folded into the network's dense layers: the era heads (decade, year, IMDb rating), and a genre probe that is
stacked with the fine-tuned genre head.

Linear models on these frozen ImageNet features learn the era better than heads trained with the genres on the
fine-tuned feature vector, and rank the genres better than the fine-tuned head itself; stacked, the two rank better
than either (bench/README.md, "What a poster evokes"). scikit-learn fits them in seconds from the cached frozen
outputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.network import DECADES_LAYER, ERA_HEADS, RATING_LAYER, YEAR_LAYER

GENRE_C = 3e-4
"""Inverse L2 penalty of each genre's logistic regression on standardised pools (scikit-learn's C: a fixed prior on
the weights, whatever the number of posters). On the real posters' validation split, the probe alone on the pool of
blocks 3, 4 and ImageNet block 5 at 128 x 192 (2,560 values, training posters and their augmented copies): macro
ROC-AUC 0.788 at 1e-3, 0.792 at 3e-4, 0.787 at 1e-4 (a one-off on a training run's cached pools, bench/README.md); on
block 4 alone at 128 x 128: 0.771 at 1e-3, 0.770 at 3e-4 (`posterbench bench frozen_pool_probes`)."""
DECADE_C = 3e-4
"""The same for the decade's logistic regression: decade accuracy 0.496, 0.504 and 0.501 at 1e-3, 3e-4 and 1e-4
(`posterbench bench frozen_pool_probes`)."""
REGRESSION_ALPHA = 1000.0
"""L2 penalty of the year's and rating's ridge regressions on standardised pools (of 100, 1,000 and 10,000, the
year's error is lowest at 100 and 1,000, the rating's Spearman highest at 10,000)."""
POOL_CHUNK = 512

MIN_STACKING_POSTERS = 20
"""Held-out posters needed with and without a genre before its two heads are stacked (else the fine-tuned head
alone)."""

BASE_RATE_INTERCEPTS = (-40.0, 40.0)
"""Where the intercept that gives a stacked genre its base rate is searched for (logits; the mean probability goes
from about 0 to about 1 across it)."""

DenseWeights = tuple[np.ndarray, np.ndarray]
"""Kernel (inputs, outputs) and bias (outputs,) of a dense layer, as Keras holds them."""


@dataclass(frozen=True)
class Standardisation:
    """Per-column mean and scale of the training pools; models are fitted on standardised pools, then folded back."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def of(cls, pools: np.ndarray) -> Standardisation:
        scale = pools.std(axis=0)
        return cls(pools.mean(axis=0), np.where(scale == 0, 1.0, scale))

    def __call__(self, pools: np.ndarray) -> np.ndarray:
        return (pools - self.mean) / self.scale

    def fold(self, kernel: np.ndarray, bias: np.ndarray) -> DenseWeights:
        """The layer that gives on raw pools what (kernel, bias) gives on standardised ones."""
        kernel = np.asarray(kernel, dtype=np.float64)
        return (
            (kernel / self.scale[:, None]).astype(np.float32),
            (np.asarray(bias) - (self.mean / self.scale) @ kernel).astype(np.float32),
        )


def frozen_pool(frozen_outputs: np.ndarray) -> np.ndarray:
    """(n, h, w, c) frozen outputs (memory-mapped float16 is fine) -> (n, 2c) float32: the mean over the image, then
    the maximum, as the network's frozen_pool layer concatenates them."""
    chunks = []
    for start in range(0, len(frozen_outputs), POOL_CHUNK):
        chunk = np.asarray(frozen_outputs[start : start + POOL_CHUNK], dtype=np.float32)
        chunks.append(np.concatenate([chunk.mean(axis=(1, 2)), chunk.max(axis=(1, 2))], axis=1))
    if not chunks:
        return np.zeros((0, 2 * np.shape(frozen_outputs)[-1]), np.float32)
    return np.concatenate(chunks)


def fit_era_heads(
    pools: np.ndarray, years: np.ndarray, ratings: np.ndarray, decades: tuple[int, ...]
) -> dict[str, DenseWeights]:
    """Fit the decade (multinomial logistic regression over `decades`), year and rating (ridge regressions) on
    standardised `pools`; rows whose year or rating is NaN are left out of that head. The standardisation is folded
    into each kernel, so the heads read the raw frozen pool."""
    from sklearn.linear_model import LogisticRegression, Ridge

    standardisation = Standardisation.of(pools)
    standardised = standardisation(pools)
    known_year = ~np.isnan(years)
    known_decade = known_year & np.isin(np.where(known_year, years // 10 * 10, -1), decades)
    decade_kernel = np.zeros((pools.shape[1], len(decades)))
    decade_bias = np.zeros(len(decades))
    decade_rows = (years[known_decade] // 10 * 10).astype(int)
    if len(np.unique(decade_rows)) > 1:
        classifier = LogisticRegression(C=DECADE_C, max_iter=300)
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
            ridge = Ridge(alpha=REGRESSION_ALPHA).fit(standardised[known], values[known])
            kernel, bias = ridge.coef_[:, None], np.array([ridge.intercept_])
        heads[head] = (kernel, bias)
    return {head: standardisation.fold(kernel, bias) for head, (kernel, bias) in heads.items()}


def fit_genre_probe(pools: np.ndarray, labels: np.ndarray) -> DenseWeights:
    """One logistic regression per genre on standardised `pools` (labels (n, n_genres) 0/1): the kernel and bias of
    the genres' logits on the raw pool. A genre that every row has, or none has, gets a constant logit."""
    from sklearn.linear_model import LogisticRegression

    standardisation = Standardisation.of(pools)
    standardised = standardisation(pools)
    kernel = np.zeros((pools.shape[1], labels.shape[1]))
    bias = np.zeros(labels.shape[1])
    for genre in range(labels.shape[1]):
        share = float(np.clip(labels[:, genre].mean(), 1e-4, 1 - 1e-4))
        if labels[:, genre].min() == labels[:, genre].max():
            bias[genre] = np.log(share / (1 - share))
            continue
        probe = LogisticRegression(C=GENRE_C, max_iter=300)
        probe.fit(standardised, labels[:, genre])
        kernel[:, genre], bias[genre] = probe.coef_[0], probe.intercept_[0]
    return standardisation.fold(kernel, bias)


def stack_genres(
    tuned: np.ndarray, probe: np.ndarray, labels: np.ndarray, base_rates: np.ndarray | None = None
) -> np.ndarray:
    """Per genre (a, b, c) of sigmoid(a * tuned + b * probe + c), fitted on held-out posters: the weights of the
    fine-tuned head's logits `tuned` and the probe's `probe` (both (n, n_genres)), which also calibrates the result.
    A genre with too few held-out posters with (or without) it keeps the fine-tuned head alone: (1, 0, 0).

    With `base_rates` (each genre's share of a larger labelled sample, such as the training and held-out posters
    together), each stacked genre's c is then set so that its mean probability over the held-out posters is that
    share: a and b still come from the held-out posters, but the genre's base rate no longer rests on their few
    hundred alone (bench/README.md, "Calibration")."""
    from sklearn.linear_model import LogisticRegression

    weights = np.tile([1.0, 0.0, 0.0], (labels.shape[1], 1))
    for genre in range(labels.shape[1]):
        if min(labels[:, genre].sum(), len(labels) - labels[:, genre].sum()) < MIN_STACKING_POSTERS:
            continue
        inputs = np.column_stack([tuned[:, genre], probe[:, genre]])
        stacking = LogisticRegression(C=1e4).fit(inputs, labels[:, genre])  # two weights: next to no penalty
        weights[genre] = [*stacking.coef_[0], stacking.intercept_[0]]
        if base_rates is not None and 0 < base_rates[genre] < 1:
            weights[genre, 2] = intercept_for_base_rate(inputs @ stacking.coef_[0], float(base_rates[genre]))
    return weights


def intercept_for_base_rate(logits: np.ndarray, base_rate: float) -> float:
    """The c for which sigmoid(logits + c) averages `base_rate` (strictly between 0 and 1) over the rows."""
    from scipy.optimize import brentq
    from scipy.special import expit

    return float(brentq(lambda c: expit(logits + c).mean() - base_rate, *BASE_RATE_INTERCEPTS))


def stacked_genre_layer(tuned: DenseWeights, probe: DenseWeights, stacking: np.ndarray) -> DenseWeights:
    """The genre layer on [feature vector, frozen pool] whose logits are a * tuned + b * probe + c per genre."""
    a, b, c = stacking.T
    kernel = np.vstack([tuned[0] * a, probe[0] * b])
    return kernel.astype(np.float32), (tuned[1] * a + probe[1] * b + c).astype(np.float32)


def predict_era(pools: np.ndarray, heads: dict[str, DenseWeights]) -> dict[str, np.ndarray]:
    """What the era heads give for `pools`, by head, as the network would (softmax over the decades)."""
    outputs = {head: pools @ kernel + bias for head, (kernel, bias) in heads.items() if head in ERA_HEADS}
    logits = outputs[DECADES_LAYER] - outputs[DECADES_LAYER].max(axis=1, keepdims=True)
    outputs[DECADES_LAYER] = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return outputs
