"""Fitted regression trees held as plain numpy arrays: prediction without scikit-learn objects, and saving
without pickles (the arrays go to an .npz file read with allow_pickle=False).

A `PackedForest` holds scikit-learn regression trees grouped into "joint trees": joint tree g predicts the whole
output vector (for CLEMS, the embedding) and is either one multi-output tree or one single-output tree per
output. The forest's prediction is the mean of the joint trees' predictions, as a random forest's is. Rows are
compared as float32 with the float64 thresholds, as scikit-learn does, so predictions match the trees' own.

Why our own format and not a library's: joblib or pickle would save the fitted scikit-learn objects, but loading a
pickle runs code from the file and breaks across scikit-learn versions (the app loads CLEMS at every start);
skops.io (not in the locks) loads safely but rebuilds scikit-learn forests, whose predict calls each of the 500
trees per dimension in turn, and skl2onnx would add a converter to the `train` extra for
what these flat arrays do in a few vectorised numpy steps over all trees at once. The format is the trees' own
arrays (children, feature, threshold, value), so nothing is approximated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.tree import DecisionTreeRegressor

ROWS_PER_CHUNK = 2048
TREES_PER_BLOCK = 64


@dataclass(frozen=True, eq=False)
class PackedForest:
    """Trees as flat node arrays, leaves pointing to themselves so that every row walks exactly `depth` steps.

    Node arrays, one entry per node of all trees together: children (n_nodes, 2: the global indices of the left
    and right child), feature, threshold, value (n_nodes, outputs_per_tree); a row goes right when its feature
    exceeds the threshold. Per tree: roots (its root node), groups (its joint tree), output_dims (n_trees,
    outputs_per_tree: the output each value column feeds)."""

    children: NDArray[np.int32]
    feature: NDArray[np.int32]
    threshold: NDArray[np.float64]
    value: NDArray[np.float64]
    roots: NDArray[np.int32]
    groups: NDArray[np.int32]
    output_dims: NDArray[np.int32]
    n_groups: int
    n_outputs: int
    depth: int

    @classmethod
    def from_trees(
        cls,
        trees: Sequence[DecisionTreeRegressor],
        groups: Sequence[int],
        output_dims: Sequence[Sequence[int]],
        n_outputs: int,
    ) -> PackedForest:
        """Pack fitted regression trees: tree t belongs to joint tree groups[t] and predicts the outputs
        output_dims[t], in its own output order. Every joint tree must cover every output exactly once."""
        children, features, thresholds, values, roots = [], [], [], [], []
        offset = 0
        depth = 0
        for estimator, dims in zip(trees, output_dims, strict=True):
            tree = estimator.tree_
            is_leaf = tree.children_left < 0
            own_index = np.arange(tree.node_count)
            left = np.where(is_leaf, own_index, tree.children_left)
            right = np.where(is_leaf, own_index, tree.children_right)
            children.append(np.column_stack([left, right]) + offset)
            features.append(np.where(is_leaf, 0, tree.feature))
            thresholds.append(np.where(is_leaf, np.inf, tree.threshold))
            values.append(tree.value[:, :, 0].reshape(tree.node_count, len(dims)))
            roots.append(offset)
            offset += tree.node_count
            depth = max(depth, tree.max_depth)
        group_array = np.asarray(groups, dtype=np.int32)
        dims_array = np.asarray(output_dims, dtype=np.int32).reshape(len(roots), -1)
        n_groups = int(group_array.max()) + 1
        coverage = np.zeros((n_groups, n_outputs), dtype=np.int64)
        np.add.at(coverage, (np.repeat(group_array, dims_array.shape[1]), dims_array.ravel()), 1)
        if not (coverage == 1).all():
            raise ValueError("every joint tree must predict every output exactly once")
        return cls(
            children=np.concatenate(children).astype(np.int32),
            feature=np.concatenate(features).astype(np.int32),
            threshold=np.concatenate(thresholds).astype(np.float64),
            value=np.concatenate(values).astype(np.float64),
            roots=np.asarray(roots, dtype=np.int32),
            groups=group_array,
            output_dims=dims_array,
            n_groups=n_groups,
            n_outputs=n_outputs,
            depth=depth,
        )

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def _tree_blocks(self, inputs: ArrayLike) -> Iterator[tuple[slice, slice, NDArray[np.int32]]]:
        """(rows, trees, leaves) for consecutive blocks of rows and trees: leaves[i, j] is the global node that row
        rows[i] reaches in tree trees[j]. Walking a few trees at a time keeps their nodes in the processor's cache."""
        rows = np.asarray(inputs, dtype=np.float32)
        flat_children = self.children.ravel()
        for row_start in range(0, rows.shape[0], ROWS_PER_CHUNK):
            row_block = slice(row_start, min(row_start + ROWS_PER_CHUNK, rows.shape[0]))
            flat_rows = rows[row_block].astype(np.float64).ravel()
            row_offsets = (np.arange(row_block.stop - row_block.start) * rows.shape[1])[:, np.newaxis]
            for tree_start in range(0, self.n_trees, TREES_PER_BLOCK):
                tree_block = slice(tree_start, min(tree_start + TREES_PER_BLOCK, self.n_trees))
                nodes = np.repeat(self.roots[tree_block][np.newaxis, :], row_block.stop - row_block.start, axis=0)
                for _ in range(self.depth):
                    goes_right = flat_rows[row_offsets + self.feature[nodes]] > self.threshold[nodes]
                    nodes = flat_children[2 * nodes + goes_right]
                yield row_block, tree_block, nodes

    def predict_groups(self, inputs: ArrayLike) -> NDArray[np.float64]:
        """(n, n_groups, n_outputs): each joint tree's prediction for each row."""
        rows = np.asarray(inputs)
        out = np.zeros((rows.shape[0], self.n_groups, self.n_outputs))
        for row_block, tree_block, nodes in self._tree_blocks(rows):
            groups = self.groups[tree_block][:, np.newaxis]
            out[row_block, groups, self.output_dims[tree_block]] = self.value[nodes]
        return out

    def predict(self, inputs: ArrayLike) -> NDArray[np.float64]:
        """(n, n_outputs): the mean of the joint trees' predictions."""
        rows = np.asarray(inputs)
        return self.masked_mean(rows, np.ones((rows.shape[0], self.n_groups), dtype=bool))

    def masked_mean(self, inputs: ArrayLike, group_mask: ArrayLike) -> NDArray[np.float64]:
        """(n, n_outputs): per row, the mean prediction of the joint trees g with group_mask[row, g] true (NaN
        for a row with none), e.g. out-of-bag predictions."""
        rows = np.asarray(inputs)
        mask = np.asarray(group_mask, dtype=bool)
        if mask.shape != (rows.shape[0], self.n_groups):
            raise ValueError(f"group_mask must have shape {(rows.shape[0], self.n_groups)}, got {mask.shape}")
        totals = np.zeros((rows.shape[0], self.n_outputs))
        for row_block, tree_block, nodes in self._tree_blocks(rows):
            leaf_values = self.value[nodes]
            tree_weights = mask[row_block][:, self.groups[tree_block]]
            for column in range(self.output_dims.shape[1]):
                one_hot = self._one_hot(self.output_dims[tree_block, column])
                totals[row_block] += (leaf_values[:, :, column] * tree_weights) @ one_hot
        counts = mask.sum(axis=1)[:, np.newaxis]
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)

    def _one_hot(self, tree_dims: NDArray[np.int32]) -> NDArray[np.float64]:
        """(n_trees, n_outputs) with a 1 at [t, tree_dims[t]]."""
        indicator = np.zeros((len(tree_dims), self.n_outputs))
        indicator[np.arange(len(tree_dims)), tree_dims] = 1.0
        return indicator

    def to_arrays(self, prefix: str = "") -> dict[str, NDArray]:
        """Every field as an array, keys prefixed, for np.savez."""
        return {prefix + field.name: np.asarray(getattr(self, field.name)) for field in fields(self)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, NDArray] | np.lib.npyio.NpzFile, prefix: str = "") -> PackedForest:
        """The inverse of to_arrays."""
        values = {field.name: arrays[prefix + field.name] for field in fields(cls)}
        for name in ("n_groups", "n_outputs", "depth"):
            values[name] = int(values[name])
        return cls(**values)
