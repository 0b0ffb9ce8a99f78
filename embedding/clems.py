"""CLEMS, cost-sensitive label embedding with multidimensional scaling (Huang and Lin, Machine Learning 2017), as
a scikit-learn estimator; see ../shared/specs/clems.md for the algorithm and the numbers it must reach.

Fitting: the U distinct training label vectors are the candidates, weighted by how many rows carry them. They are
placed twice, as "true" copies 0..U-1 and "candidate" copies U..2U-1, with dissimilarity sqrt(c(y_i, y_j))
between true copy i and candidate copy j (the mirror: it lets an asymmetric cost be embedded) and weight w_i on
that pair; pairs within one copy carry weight 0. Weighted SMACOF (embedding/smacof.py) embeds the 2U points in
`embedding_dim` dimensions (K by default), best of `n_init` random starts. Random forests then regress each
training row's features onto the embedding of its own label vector's true copy.

Prediction: the forests' regression z(x) is decoded to the label vector of the nearest (Euclidean) candidate
copy, so predictions are always label vectors seen in training, and each cost needs its own model.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils import Tags, check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from embedding import ARRAYS_FILE, DESCRIPTION_FILE
from embedding.costs import COSTS, CostFunction, pairwise_cost
from embedding.forest import PackedForest
from embedding.smacof import weighted_smacof

REGRESSORS = ("per_dimension", "multi_output")
SAVE_FORMAT = 1
ROWS_PER_PROBA_CHUNK = 128


def mirrored_dissimilarity(
    cost_matrix: ArrayLike, candidate_weights: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The 2U x 2U dissimilarities and weights CLEMS embeds, from C[i, j] = c(y_i true, y_j predicted) (U x U).

    D[i, U + j] = D[U + j, i] = sqrt(C[i, j]) with weight w_i; every pair within the true copies or within the
    candidate copies has dissimilarity 0 and weight 0."""
    costs = np.asarray(cost_matrix, dtype=np.float64)
    weights = np.asarray(candidate_weights, dtype=np.float64)
    n_candidates = costs.shape[0]
    if costs.shape != (n_candidates, n_candidates) or weights.shape != (n_candidates,):
        raise ValueError(f"need a U x U cost matrix and U weights, got {costs.shape} and {weights.shape}")
    if np.any(costs < 0):
        raise ValueError("costs must be non-negative")
    dissimilarities = np.zeros((2 * n_candidates, 2 * n_candidates))
    pair_weights = np.zeros_like(dissimilarities)
    dissimilarities[:n_candidates, n_candidates:] = np.sqrt(costs)
    dissimilarities[n_candidates:, :n_candidates] = np.sqrt(costs).T
    pair_weights[:n_candidates, n_candidates:] = weights[:, np.newaxis]
    pair_weights[n_candidates:, :n_candidates] = weights[np.newaxis, :]
    return dissimilarities, pair_weights


def _squared_distances(points: ArrayLike, candidate_points: ArrayLike) -> NDArray[np.float64]:
    """(..., U) squared Euclidean distances from points (..., p) to the rows of candidate_points (U, p)."""
    queries = np.asarray(points, dtype=np.float64)
    copies = np.asarray(candidate_points, dtype=np.float64)
    squared = (
        np.einsum("...i,...i->...", queries, queries)[..., np.newaxis]
        - 2.0 * queries @ copies.T
        + np.einsum("ij,ij->i", copies, copies)
    )
    return np.maximum(squared, 0.0)


def nearest_candidates(points: ArrayLike, candidate_points: ArrayLike) -> NDArray[np.intp]:
    """Index of the nearest (Euclidean) row of candidate_points for each row of points (..., p); the first on ties."""
    return np.argmin(_squared_distances(points, candidate_points), axis=-1)


def decoding_margins(points: ArrayLike, candidate_points: ArrayLike, candidates: ArrayLike) -> NDArray[np.float64]:
    """(n, K): for each point and label k, the squared distance to the nearest candidate copy WITHOUT label k
    minus that to the nearest candidate copy WITH it. Positive exactly when the nearest candidate overall carries
    k (ties aside), so its sign is the hard decoding; +inf / -inf when every / no candidate carries k."""
    squared = _squared_distances(np.atleast_2d(points), candidate_points)[:, :, np.newaxis]
    carries = (np.asarray(candidates) != 0)[np.newaxis]
    nearest_with = np.where(carries, squared, np.inf).min(axis=1)
    nearest_without = np.where(carries, np.inf, squared).min(axis=1)
    return nearest_without - nearest_with


def fit_temperature(margins: ArrayLike, labels: ArrayLike) -> float:
    """The temperature t minimising the mean log loss of P(label) = sigmoid(margin / t) over the finite margins
    (a one-parameter Platt scaling without offset, so that P > 0.5 exactly where the margin is positive).

    Searched over 1e-6 to 1e3 times the median absolute margin; 1.0 when there is no finite margin."""
    margin_values = np.asarray(margins, dtype=np.float64)
    finite = np.isfinite(margin_values)
    scale = float(np.median(np.abs(margin_values[finite]))) if finite.any() else 0.0
    if scale == 0.0:
        return 1.0
    signed = np.where(np.asarray(labels)[finite] != 0, 1.0, -1.0) * margin_values[finite]

    def mean_log_loss(log_temperature: float) -> float:
        return float(-np.mean(log_expit(signed / np.exp(log_temperature))))

    bounds = (np.log(scale * 1e-6), np.log(scale * 1e3))
    best = minimize_scalar(mean_log_loss, bounds=bounds, method="bounded", options={"xatol": 1e-4})
    return float(np.exp(best.x))


def _fit_tree(
    inputs: NDArray[np.float32],
    targets: NDArray[np.float64],
    bootstrap_counts: NDArray[np.uint16],
    seed: int,
    max_depth: int | None,
    max_features: str | int | float | None,
) -> DecisionTreeRegressor:
    tree = DecisionTreeRegressor(max_depth=max_depth, max_features=max_features, random_state=seed)
    return tree.fit(inputs, targets, sample_weight=bootstrap_counts.astype(np.float64))


class CLEMS(ClassifierMixin, BaseEstimator):
    """Cost-sensitive multi-label classifier by label embedding (CLEMS), trained for one cost.

    Parameters
    ----------
    cost : "hamming", "rank", "f1", "jaccard" or callable
        The per-example cost c(y_true, y_pred) the model is trained for (embedding/costs.py). A callable takes
        two 0/1 vectors of K labels and returns a non-negative float, 0 when they are equal; a model trained
        with one cannot be saved.
    n_estimators, max_depth, max_features :
        Of the random forest (the authors' 500 trees, depth 10, "sqrt" features tried per split).
    regressor : "per_dimension" or "multi_output"
        The authors' one single-output forest per embedding dimension (the default: on MULAN scene and yeast it
        is more accurate, see bench/clems_benchmark.py), or one multi-output forest over the whole embedding,
        several times faster to fit and predict. Tree g of every dimension is grown on the same bootstrap
        sample (with its own feature draws), so the g-th trees form the g-th "joint tree".
    embedding_dim : int or None
        Dimension of the embedding; None means K, the number of labels, as in the paper.
    n_init, max_iter, tol :
        SMACOF: the best of n_init random starts by weighted stress, each stopped after max_iter Guttman
        transforms or once one lowers the stress by no more than tol times its value.
    random_state : int, RandomState or None
        Seeds the SMACOF starts, the bootstrap samples and the trees.
    n_jobs : int or None
        Threads growing the trees (joblib convention: None is 1, -1 all cores).

    Attributes
    ----------
    n_features_in_, n_labels_ : numbers of features and labels (K) seen in fit.
    candidates_ : (U, K) int array, the distinct training label vectors (sorted); every prediction is one of them.
    candidate_weights_ : (U,) int array, how many training rows carry each candidate.
    embedding_ : (2U, embedding_dim); rows 0..U-1 are the true copies, U..2U-1 the candidate copies.
    stress_, smacof_n_iter_ : weighted stress of embedding_ and the iterations of the winning SMACOF start.
    forest_ : PackedForest, the regression trees as plain arrays (embedding/forest.py).
    temperature_ : float, the scale of predict_proba, fitted on out-of-bag predictions.

    Probabilities
    -------------
    predict_proba(X)[n, k] = sigmoid(m_k(z) / temperature_), where z is the regressed embedding of row n and
    m_k(z) = |z - nearest candidate copy without label k|^2 - |z - nearest candidate copy with label k|^2
    (decoding_margins). m_k(z) > 0 exactly when the nearest candidate, the hard prediction, carries k, so the
    probability exceeds 0.5 exactly for the predicted labels (an exact tie of two candidates aside); a label that
    every (no) training vector carries gets 1 (0). temperature_ is the one-parameter Platt scaling of the margins
    that minimises the log loss of the training rows' out-of-bag predictions (each row's embedding regressed by
    the trees whose bootstrap sample left it out); when the classes are separable it shrinks towards 0 and the
    probabilities tend to the hard 0/1 prediction.
    tree_vote_shares(X), the spec's first suggestion (the share of joint trees whose own regression, decoded,
    carries each label), is kept for comparison; it is not consistent with predict: on MULAN scene a quarter to a
    third of the rows get no label above 0.5 by it, against none by predict.

    Saving
    ------
    save(directory) writes clems.json (parameters and sizes) and clems.npz (the arrays, the trees as node
    arrays); CLEMS.load(directory) reads them back with allow_pickle=False: no pickle is involved, and a saved
    model does not depend on the scikit-learn version.

    The class lists ClassifierMixin before BaseEstimator, the order scikit-learn requires (the other order
    leaves the estimator untagged as a classifier).
    """

    def __init__(
        self,
        cost: str | CostFunction = "hamming",
        *,
        n_estimators: int = 500,
        max_depth: int | None = 10,
        max_features: str | int | float | None = "sqrt",
        regressor: str = "per_dimension",
        embedding_dim: int | None = None,
        n_init: int = 8,
        max_iter: int = 300,
        tol: float = 1e-6,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.cost = cost
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.max_features = max_features
        self.regressor = regressor
        self.embedding_dim = embedding_dim
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        tags.classifier_tags.multi_label = True
        return tags

    def _check_parameters(self) -> None:
        if not callable(self.cost) and self.cost not in COSTS:
            raise ValueError(f"cost must be one of {sorted(COSTS)} or a callable, got {self.cost!r}")
        if self.regressor not in REGRESSORS:
            raise ValueError(f"regressor must be one of {REGRESSORS}, got {self.regressor!r}")
        if self.n_estimators < 1:
            raise ValueError(f"n_estimators must be at least 1, got {self.n_estimators}")
        if self.embedding_dim is not None and self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be at least 1 or None, got {self.embedding_dim}")

    def fit(self, X: ArrayLike, Y: ArrayLike) -> CLEMS:  # noqa: N803 (scikit-learn's names)
        """Embed the cost between the training label vectors, regress X onto the embedding, and fit the
        temperature of predict_proba. X: (n, d) features; Y: (n, K) 0/1 label matrix."""
        self._check_parameters()
        inputs = validate_data(self, X, dtype=np.float32)
        labels = check_array(Y, dtype=None, input_name="Y")
        if labels.shape[0] != inputs.shape[0]:
            raise ValueError(f"X has {inputs.shape[0]} rows but Y has {labels.shape[0]}")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("Y must be a 0/1 label matrix")
        labels = labels.astype(np.int64)
        rng = check_random_state(self.random_state)

        candidates, row_candidate, counts = np.unique(labels, axis=0, return_inverse=True, return_counts=True)
        dissimilarities, weights = mirrored_dissimilarity(pairwise_cost(self.cost, candidates, candidates), counts)
        n_components = self.embedding_dim if self.embedding_dim is not None else labels.shape[1]
        smacof = weighted_smacof(
            dissimilarities,
            weights,
            n_components,
            n_init=self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=rng,
        )
        targets = smacof.embedding[: len(candidates)][row_candidate.reshape(-1)]

        n_rows = inputs.shape[0]
        bootstrap_counts = np.stack(
            [np.bincount(rng.randint(0, n_rows, n_rows), minlength=n_rows) for _ in range(self.n_estimators)]
        ).astype(np.uint16)
        # (joint tree, outputs it predicts, their targets) for every tree
        if self.regressor == "multi_output":
            all_outputs = list(range(n_components))
            tree_jobs = [(group, all_outputs, targets) for group in range(self.n_estimators)]
        else:
            columns = [np.ascontiguousarray(targets[:, dim]) for dim in range(n_components)]
            tree_jobs = [
                (group, [dim], columns[dim]) for group in range(self.n_estimators) for dim in range(n_components)
            ]
        seeds = rng.randint(np.iinfo(np.int32).max, size=len(tree_jobs))
        trees = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(_fit_tree)(inputs, tree_targets, bootstrap_counts[group], seed, self.max_depth, self.max_features)
            for (group, _, tree_targets), seed in zip(tree_jobs, seeds, strict=True)
        )
        tree_groups = [group for group, _, _ in tree_jobs]
        tree_outputs = [outputs for _, outputs, _ in tree_jobs]

        self.n_labels_ = labels.shape[1]
        self.candidates_ = candidates
        self.candidate_weights_ = counts.astype(np.int64)
        self.embedding_ = smacof.embedding
        self.stress_ = smacof.stress
        self.smacof_n_iter_ = smacof.n_iter
        self.forest_ = PackedForest.from_trees(trees, tree_groups, tree_outputs, n_components)
        out_of_bag = self.forest_.masked_mean(inputs, (bootstrap_counts == 0).T)
        has_out_of_bag = ~np.isnan(out_of_bag).any(axis=1)
        self.temperature_ = fit_temperature(
            decoding_margins(out_of_bag[has_out_of_bag], self.candidate_embedding_, candidates),
            labels[has_out_of_bag],
        )
        return self

    @property
    def candidate_embedding_(self) -> NDArray[np.float64]:
        """(U, embedding_dim): the candidate copies, which decoding searches."""
        return self.embedding_[len(self.candidates_) :]

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:  # noqa: N803
        """(n, embedding_dim): the regressed embedding z(x), before decoding."""
        check_is_fitted(self)
        return self.forest_.predict(validate_data(self, X, dtype=np.float32, reset=False))

    def decode(self, embedded: ArrayLike) -> NDArray[np.int64]:
        """Label vectors of the candidates whose candidate copies are nearest to the given embedding points."""
        check_is_fitted(self)
        return self.candidates_[nearest_candidates(embedded, self.candidate_embedding_)]

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:  # noqa: N803
        """(n, K) 0/1 predictions, each a training label vector."""
        return self.decode(self.transform(X))

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:  # noqa: N803
        """(n, K) per-label probabilities sigmoid(decoding margin / temperature_), above 0.5 exactly for the labels
        predict() gives (see the class docstring)."""
        return self._probabilities(self.transform(X))

    def predict_with_proba(self, X: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64]]:  # noqa: N803
        """predict(X) and predict_proba(X) from one pass through the forest."""
        embedded = self.transform(X)
        return self.decode(embedded), self._probabilities(embedded)

    def _probabilities(self, embedded: NDArray[np.float64]) -> NDArray[np.float64]:
        margins = decoding_margins(embedded, self.candidate_embedding_, self.candidates_)
        return expit(margins / self.temperature_)

    def tree_vote_shares(self, X: ArrayLike) -> NDArray[np.float64]:  # noqa: N803
        """(n, K): the share of joint trees whose own regression, decoded to its nearest candidate, carries each
        label. Equal to predict() where all trees agree; not consistent with it otherwise (class docstring)."""
        check_is_fitted(self)
        rows = validate_data(self, X, dtype=np.float32, reset=False)
        shares = np.empty((rows.shape[0], self.n_labels_))
        for start in range(0, rows.shape[0], ROWS_PER_PROBA_CHUNK):
            tree_points = self.forest_.predict_groups(rows[start : start + ROWS_PER_PROBA_CHUNK])
            tree_labels = self.candidates_[nearest_candidates(tree_points, self.candidate_embedding_)]
            shares[start : start + ROWS_PER_PROBA_CHUNK] = tree_labels.mean(axis=1)
        return shares

    def save(self, directory: str | Path) -> None:
        """Write clems.json and clems.npz into `directory` (created if needed)."""
        check_is_fitted(self)
        if callable(self.cost):
            raise ValueError("a model trained with a callable cost cannot be saved; use one of the named costs")
        params = self.get_params()
        if not isinstance(params["random_state"], int | None):
            params["random_state"] = None
        description = {
            "format": SAVE_FORMAT,
            "estimator": "CLEMS",
            "params": params,
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": [str(name) for name in getattr(self, "feature_names_in_", [])] or None,
            "n_labels": int(self.n_labels_),
            "stress": float(self.stress_),
            "smacof_n_iter": int(self.smacof_n_iter_),
            "temperature": float(self.temperature_),
        }
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            target / ARRAYS_FILE,
            candidates=self.candidates_,
            candidate_weights=self.candidate_weights_,
            embedding=self.embedding_,
            **self.forest_.to_arrays(prefix="forest_"),
        )
        (target / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> CLEMS:
        """A fitted model from a directory written by save(); ValueError naming the directory if it is missing or
        damaged."""
        source = Path(directory)
        try:
            return cls._load(source)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
            raise ValueError(f"{source}: not a whole CLEMS directory ({error}); fit it again (make clems)") from error

    @classmethod
    def _load(cls, source: Path) -> CLEMS:
        description = json.loads((source / DESCRIPTION_FILE).read_text())
        if description.get("estimator") != "CLEMS" or description.get("format") != SAVE_FORMAT:
            raise ValueError(f"{source / DESCRIPTION_FILE} is not a CLEMS model of format {SAVE_FORMAT}")
        model = cls(**description["params"])
        with np.load(source / ARRAYS_FILE, allow_pickle=False) as arrays:
            model.candidates_ = arrays["candidates"]
            model.candidate_weights_ = arrays["candidate_weights"]
            model.embedding_ = arrays["embedding"]
            model.forest_ = PackedForest.from_arrays(arrays, prefix="forest_")
        model.n_features_in_ = description["n_features_in"]
        if description["feature_names_in"] is not None:
            model.feature_names_in_ = np.asarray(description["feature_names_in"], dtype=object)
        model.n_labels_ = description["n_labels"]
        model.stress_ = description["stress"]
        model.smacof_n_iter_ = description["smacof_n_iter"]
        model.temperature_ = description["temperature"]
        return model
