"""Weighted metric multidimensional scaling by SMACOF (stress majorisation), as plain functions.

Given dissimilarities delta (n x n, symmetric) and non-negative symmetric weights W (zero diagonal), SMACOF finds
points X (n x p) that minimise the weighted raw stress

    sigma(X) = sum over pairs i < j of W[i, j] * (d_ij(X) - delta[i, j])**2,     d_ij(X) = |X_i - X_j|.

Each step is the weighted Guttman transform X <- V^+ B(X) X, with V = diag(W 1) - W, V^+ its Moore-Penrose
pseudo-inverse (V is singular: translating every point changes nothing) and B(X)[i, j] = -W[i, j] delta[i, j] /
d_ij(X) off the diagonal (0 where d_ij(X) = 0), B(X)[i, i] = -sum_{j != i} B(X)[i, j]. It never increases the
stress. scikit-learn's `smacof` has no weights, hence this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_random_state


@dataclass(frozen=True)
class SmacofResult:
    """The best configuration found, its weighted stress, and the iterations its run took."""

    embedding: NDArray[np.float64]
    stress: float
    n_iter: int


def pairwise_distances(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Euclidean distance matrix of the rows of `points`."""
    squared_norms = np.einsum("ij,ij->i", points, points)
    squared = squared_norms[:, np.newaxis] + squared_norms[np.newaxis, :] - 2.0 * points @ points.T
    np.fill_diagonal(squared, 0.0)
    return np.sqrt(np.maximum(squared, 0.0))


def _stress_from_distances(distances: NDArray[np.float64], dissimilarities: NDArray, weights: NDArray) -> float:
    return float(0.5 * np.sum(weights * (distances - dissimilarities) ** 2))


def weighted_stress(points: ArrayLike, dissimilarities: ArrayLike, weights: ArrayLike) -> float:
    """Weighted raw stress: sum over unordered pairs of weight * (distance - dissimilarity)**2."""
    distances = pairwise_distances(np.asarray(points, dtype=np.float64))
    return _stress_from_distances(distances, np.asarray(dissimilarities), np.asarray(weights))


def majorization_pseudo_inverse(weights: ArrayLike) -> NDArray[np.float64]:
    """V^+ for V = diag(W 1) - W, the matrix of the quadratic majoriser of the weighted stress."""
    weight_matrix = np.asarray(weights, dtype=np.float64)
    laplacian = np.diag(weight_matrix.sum(axis=1)) - weight_matrix
    return np.linalg.pinv(laplacian, hermitian=True)


def _guttman_from_distances(
    points: NDArray[np.float64],
    distances: NDArray[np.float64],
    weighted_dissimilarities: NDArray[np.float64],
    v_pseudo_inverse: NDArray[np.float64],
) -> NDArray[np.float64]:
    ratios = np.divide(weighted_dissimilarities, distances, out=np.zeros_like(distances), where=distances > 0)
    np.fill_diagonal(ratios, 0.0)
    b_matrix = -ratios
    b_matrix[np.diag_indices_from(b_matrix)] = ratios.sum(axis=1)
    return v_pseudo_inverse @ (b_matrix @ points)


def guttman_transform(
    points: ArrayLike, dissimilarities: ArrayLike, weights: ArrayLike, v_pseudo_inverse: ArrayLike
) -> NDArray[np.float64]:
    """One SMACOF step: V^+ B(X) X (see the module docstring)."""
    current = np.asarray(points, dtype=np.float64)
    weighted_dissimilarities = np.asarray(weights) * np.asarray(dissimilarities)
    return _guttman_from_distances(
        current, pairwise_distances(current), weighted_dissimilarities, np.asarray(v_pseudo_inverse)
    )


def smacof_from(
    initial_points: ArrayLike,
    dissimilarities: ArrayLike,
    weights: ArrayLike,
    *,
    max_iter: int = 300,
    tol: float = 1e-6,
    v_pseudo_inverse: ArrayLike | None = None,
) -> SmacofResult:
    """SMACOF from one starting configuration.

    Stops after `max_iter` Guttman transforms, or once a transform lowers the weighted stress by no more than
    `tol` times its previous value (relative decrease), or when the stress reaches 0."""
    if v_pseudo_inverse is None:
        v_pseudo_inverse = majorization_pseudo_inverse(weights)
    points = np.asarray(initial_points, dtype=np.float64)
    delta = np.asarray(dissimilarities, dtype=np.float64)
    weight_matrix = np.asarray(weights, dtype=np.float64)
    weighted_dissimilarities = weight_matrix * delta
    pseudo_inverse = np.asarray(v_pseudo_inverse)
    distances = pairwise_distances(points)
    stress = _stress_from_distances(distances, delta, weight_matrix)
    n_iter = 0
    converged = stress == 0.0
    while n_iter < max_iter and not converged:
        points = _guttman_from_distances(points, distances, weighted_dissimilarities, pseudo_inverse)
        distances = pairwise_distances(points)
        previous_stress, stress = stress, _stress_from_distances(distances, delta, weight_matrix)
        n_iter += 1
        converged = stress == 0.0 or previous_stress - stress <= tol * previous_stress
    return SmacofResult(embedding=points, stress=stress, n_iter=n_iter)


def weighted_smacof(
    dissimilarities: ArrayLike,
    weights: ArrayLike,
    n_components: int,
    *,
    n_init: int = 8,
    max_iter: int = 300,
    tol: float = 1e-6,
    random_state: int | np.random.RandomState | None = None,
) -> SmacofResult:
    """Best of `n_init` SMACOF runs by weighted stress, each from points drawn uniformly in [0, 1)^n_components
    (the first run with the lowest stress wins ties)."""
    delta = np.asarray(dissimilarities, dtype=np.float64)
    weight_matrix = np.asarray(weights, dtype=np.float64)
    if delta.ndim != 2 or delta.shape[0] != delta.shape[1] or weight_matrix.shape != delta.shape:
        raise ValueError(
            f"need square dissimilarities and weights of one shape, got {delta.shape}, {weight_matrix.shape}"
        )
    if not (np.allclose(delta, delta.T) and np.allclose(weight_matrix, weight_matrix.T)):
        raise ValueError("dissimilarities and weights must be symmetric")
    if np.any(weight_matrix < 0) or np.any(delta < 0):
        raise ValueError("dissimilarities and weights must be non-negative")
    if n_init < 1 or n_components < 1:
        raise ValueError("n_init and n_components must be at least 1")
    rng = check_random_state(random_state)
    v_pseudo_inverse = majorization_pseudo_inverse(weight_matrix)
    best: SmacofResult | None = None
    for _ in range(n_init):
        start = rng.uniform(size=(delta.shape[0], n_components))
        result = smacof_from(start, delta, weight_matrix, max_iter=max_iter, tol=tol, v_pseudo_inverse=v_pseudo_inverse)
        if best is None or result.stress < best.stress:
            best = result
    assert best is not None
    return best
