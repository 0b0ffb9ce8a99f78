"""Per-example multi-label costs c(y_true, y_pred) that CLEMS embeds, and the scores the benchmarks report.

Every cost takes 0/1 label vectors whose last axis holds the K labels and broadcasts over the leading axes, so
`cost(y_true, y_pred)` works on two vectors of shape (K,) (a float) as well as on stacks of them (an array).
All four are 0 when the prediction equals the truth, which the mirrored dissimilarity of CLEMS relies on.

- hamming: the share of the K labels predicted wrongly.
- rank: the rank loss of the CLEMS authors for a 0/1 prediction read as scores. Over every pair (r, s) of a
  relevant label r and an irrelevant label s, a pair counts 1 when s is predicted and r is not (ranked the wrong
  way round) and 0.5 when both or neither are predicted (a tie). Not normalised by the number of pairs, as in
  the authors' code and their published numbers (so it ranges from 0 to #relevant x #irrelevant).
- f1: 1 - F1 of the example, F1 = 2 |y & p| / (|y| + |p|), with F1 = 1 when both vectors are empty.
- jaccard: 1 - |y & p| / |y | p| (1 - "accuracy" in the multi-label literature), 0 when both are empty.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from model.metrics import micro_and_macro_f1

CostFunction = Callable[[ArrayLike, ArrayLike], "NDArray[np.float64] | float"]


def _as_bool(labels: ArrayLike) -> NDArray[np.bool_]:
    return np.asarray(labels) != 0


def _scalar_if_0d(values: NDArray[np.float64]) -> NDArray[np.float64] | float:
    return float(values) if values.ndim == 0 else values


def hamming_cost(y_true: ArrayLike, y_pred: ArrayLike) -> NDArray[np.float64] | float:
    """Share of labels on which the prediction differs from the truth."""
    wrong = _as_bool(y_true) != _as_bool(y_pred)
    return _scalar_if_0d(wrong.mean(axis=-1))


def rank_cost(y_true: ArrayLike, y_pred: ArrayLike) -> NDArray[np.float64] | float:
    """Rank loss of a 0/1 prediction: wrongly ordered (relevant, irrelevant) pairs plus half the tied ones."""
    truth, predicted = np.broadcast_arrays(_as_bool(y_true), _as_bool(y_pred))
    relevant_predicted = (truth & predicted).sum(axis=-1)
    relevant_missed = (truth & ~predicted).sum(axis=-1)
    irrelevant_predicted = (~truth & predicted).sum(axis=-1)
    irrelevant_skipped = (~truth & ~predicted).sum(axis=-1)
    wrong_order = relevant_missed * irrelevant_predicted
    ties = relevant_predicted * irrelevant_predicted + relevant_missed * irrelevant_skipped
    return _scalar_if_0d(np.asarray(wrong_order + 0.5 * ties, dtype=np.float64))


def f1_cost(y_true: ArrayLike, y_pred: ArrayLike) -> NDArray[np.float64] | float:
    """1 - F1 of the example (0 when both vectors are empty)."""
    truth, predicted = _as_bool(y_true), _as_bool(y_pred)
    both = (truth & predicted).sum(axis=-1)
    sizes = truth.sum(axis=-1) + predicted.sum(axis=-1)
    f1 = np.where(sizes > 0, 2.0 * both / np.maximum(sizes, 1), 1.0)
    return _scalar_if_0d(1.0 - f1)


def jaccard_cost(y_true: ArrayLike, y_pred: ArrayLike) -> NDArray[np.float64] | float:
    """1 - Jaccard index of the example (0 when both vectors are empty)."""
    truth, predicted = _as_bool(y_true), _as_bool(y_pred)
    both = (truth & predicted).sum(axis=-1)
    either = (truth | predicted).sum(axis=-1)
    jaccard = np.where(either > 0, both / np.maximum(either, 1), 1.0)
    return _scalar_if_0d(1.0 - jaccard)


COSTS: dict[str, CostFunction] = {
    "hamming": hamming_cost,
    "rank": rank_cost,
    "f1": f1_cost,
    "jaccard": jaccard_cost,
}


def get_cost(cost: str | CostFunction) -> CostFunction:
    """The cost function named `cost` (one of COSTS), or `cost` itself when it is callable."""
    if callable(cost):
        return cost
    if cost not in COSTS:
        raise ValueError(f"unknown cost {cost!r}: expected one of {sorted(COSTS)} or a callable")
    return COSTS[cost]


def pairwise_cost(cost: str | CostFunction, true_vectors: ArrayLike, predicted_vectors: ArrayLike) -> NDArray:
    """Matrix C with C[i, j] = cost(true_vectors[i], predicted_vectors[j]).

    A cost that broadcasts (all of COSTS do) is evaluated in one call; any other callable is called per pair."""
    cost_function = get_cost(cost)
    truth = np.asarray(true_vectors)
    predicted = np.asarray(predicted_vectors)
    if cost_function in COSTS.values():
        return np.asarray(cost_function(truth[:, np.newaxis, :], predicted[np.newaxis, :, :]), dtype=np.float64)
    return np.array([[float(cost_function(t, p)) for p in predicted] for t in truth], dtype=np.float64)


def multilabel_scores(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """The usual multi-label scores of a 0/1 prediction matrix, each a mean over examples unless said otherwise.

    hamming, rank_loss (both lower is better), example_f1, accuracy (mean Jaccard index), and micro_f1 and
    macro_f1 (F1 over all (example, label) cells, and the mean of the per-label F1s, with F1 = 0 for a label that
    is neither present nor predicted, as scikit-learn's zero_division=0 does)."""
    truth, predicted = _as_bool(y_true), _as_bool(y_pred)
    if truth.shape != predicted.shape or truth.ndim != 2:
        raise ValueError(f"expected two (n, K) matrices of the same shape, got {truth.shape} and {predicted.shape}")
    micro_f1, macro_f1 = micro_and_macro_f1(truth, predicted)  # the genre model's own, one definition
    return {
        "hamming": float(np.mean(hamming_cost(truth, predicted))),
        "rank_loss": float(np.mean(rank_cost(truth, predicted))),
        "example_f1": float(1.0 - np.mean(f1_cost(truth, predicted))),
        "accuracy": float(1.0 - np.mean(jaccard_cost(truth, predicted))),
        "micro_f1": float(micro_f1),
        "macro_f1": float(macro_f1),
    }
