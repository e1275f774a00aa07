"""Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier) as plain arrays, in NumPy.

Written by hand for the reason ``crystalmela.forest`` is: the shipped model must load without
executing code and without importing scikit-learn at prediction time (the CLI's cold start). The
file is an ``.npz`` of numbers opened with ``allow_pickle=False``; ``tests/test_forest.py`` checks
the result against scikit-learn's ``predict_proba``.

Layout: as ``crystalmela.forest`` (``roots``, ``left``/``right`` with ``left = -(row + 1)`` at a
leaf, ``feature``, ``threshold`` rounded down to float32), plus

- ``missing_left``: where a NaN goes at each node (scikit-learn learns it);
- ``tree_class``: the column of ``classes`` whose score each tree adds to (one tree per class and
  boosting iteration; a single column for two classes);
- ``leaf_values``: each leaf's raw score (float64, as scikit-learn sums them);
- ``baseline``: the raw score every row starts from.

Probabilities: the softmax of ``baseline`` + the sum of each class's trees (the logistic function
of the one column for two classes), exactly as scikit-learn.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelNotAvailableError
from .forest import _floor32, check_rows, node_problem, read_arrays, walk
from .systems import CRYSTAL_SYSTEMS

KIND = "boosted"
FORMAT = 1
KEYS = ("kind", "format", "classes", "n_features", "max_depth", "baseline", "roots", "tree_class", "left",
        "right", "feature", "threshold", "missing_left", "leaf_values")


def is_boosted_file(path: str | Path) -> bool:
    """Whether ``path`` is an ``.npz`` written by ``BoostedTrees.save`` (False for anything else,
    which ``crystalmela.forest.Forest.load`` then reports properly)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return "kind" in z.files and str(z["kind"]) == KIND
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class BoostedTrees:
    classes: np.ndarray
    n_features: int
    max_depth: int
    baseline: np.ndarray
    roots: np.ndarray
    tree_class: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    leaf_values: np.ndarray
    card: object = None

    @classmethod
    def from_sklearn(cls, est) -> "BoostedTrees":
        """Export a fitted HistGradientBoostingClassifier on numeric features."""
        classes = np.asarray(est.classes_)
        if not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0 or classes.max() > 6:
            raise ValueError("classes must be crystal-system indices 0–6")
        roots, tree_class, left, right, feat, thr, miss, vals = [], [], [], [], [], [], [], []
        offset = n_leaves = depth = 0
        for iteration in est._predictors:
            for column, pred in enumerate(iteration):
                nodes = pred.nodes
                if nodes["is_categorical"].any():
                    raise ValueError("categorical splits are not supported")
                leaf = nodes["is_leaf"].astype(bool)
                rows = np.cumsum(leaf) - 1 + n_leaves
                roots.append(offset)
                tree_class.append(column)
                left.append(np.where(leaf, -(rows + 1), nodes["left"].astype(np.int64) + offset))
                right.append(np.where(leaf, -1, nodes["right"].astype(np.int64) + offset))
                feat.append(np.where(leaf, 0, nodes["feature_idx"]))
                thr.append(np.where(leaf, 0.0, nodes["num_threshold"]))
                miss.append(nodes["missing_go_to_left"].astype(bool))
                vals.append(nodes["value"][leaf])
                depth = max(depth, int(nodes["depth"].max()))
                offset += nodes.size
                n_leaves += int(leaf.sum())
        return cls(classes=classes.astype(np.int8), n_features=int(est.n_features_in_), max_depth=depth,
                   baseline=np.asarray(est._baseline_prediction, np.float64).ravel(),
                   roots=np.asarray(roots, np.int32), tree_class=np.asarray(tree_class, np.int8),
                   left=np.concatenate(left).astype(np.int32), right=np.concatenate(right).astype(np.int32),
                   feature=np.concatenate(feat).astype(np.int16), threshold=_floor32(np.concatenate(thr)),
                   missing_left=np.concatenate(miss), leaf_values=np.concatenate(vals).astype(np.float64))

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as fh:
            np.savez_compressed(fh, kind=np.str_(KIND), format=np.int32(FORMAT), classes=self.classes,
                                n_features=np.int32(self.n_features), max_depth=np.int32(self.max_depth),
                                baseline=self.baseline, roots=self.roots, tree_class=self.tree_class,
                                left=self.left, right=self.right, feature=self.feature,
                                threshold=self.threshold, missing_left=self.missing_left,
                                leaf_values=self.leaf_values)

    @classmethod
    def load(cls, path: str | Path) -> "BoostedTrees":
        """Read and validate; any inconsistency is a ModelNotAvailableError naming the file."""
        a = read_arrays(path, KEYS, "boosted-trees")
        if str(a["kind"]) != KIND or int(a["format"]) != FORMAT:
            raise ModelNotAvailableError(f"{path}: {a['kind']} format {int(a['format'])}, expected {KIND} {FORMAT}")
        model = cls(classes=a["classes"], n_features=int(a["n_features"]), max_depth=int(a["max_depth"]),
                    **{k: a[k] for k in KEYS[5:]})
        problem = model._problem()
        if problem:
            raise ModelNotAvailableError(f"{path}: inconsistent boosted-trees file: {problem}")
        return model

    def _problem(self) -> str | None:
        n, n_leaves, k = len(self.left), len(self.leaf_values), len(self.classes)
        if not (len(self.right) == len(self.feature) == len(self.threshold) == len(self.missing_left) == n):
            return "node arrays differ in length"
        if len(set(self.classes.tolist())) != k or not np.isin(self.classes, range(7)).all() or k < 2:
            return "classes are not two or more distinct crystal-system indices 0–6"
        columns = 1 if k == 2 else k
        if self.baseline.shape != (columns,) or len(self.tree_class) != len(self.roots):
            return "baseline / tree_class do not match the classes and trees"
        if self.leaf_values.ndim != 1 or self.leaf_values.dtype.kind != "f" or not np.isfinite(self.leaf_values).all():
            return "leaf values must be finite numbers"
        if not np.isfinite(self.baseline).all() or self.missing_left.dtype != bool:
            return "baseline must be finite and missing_left boolean"
        if len(self.tree_class) and (self.tree_class.min() < 0 or self.tree_class.max() >= columns):
            return "tree class out of range"
        return node_problem(self.roots, self.left, self.right, self.feature, self.n_features, n_leaves)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (n, 7) in CRYSTAL_SYSTEMS order; scikit-learn's result for the same input."""
        X = check_rows(X, self.n_features)
        node = walk(X, self.roots, self.left, self.right, self.feature, self.threshold, self.max_depth,
                    self.missing_left)
        leaf = self.leaf_values[-self.left[node] - 1]                        # (n, trees)
        raw = np.tile(self.baseline, (len(X), 1))
        for c in range(raw.shape[1]):
            raw[:, c] += leaf[:, self.tree_class == c].sum(axis=1)
        if raw.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            proba = np.c_[1.0 - p1, p1]
        else:
            raw -= raw.max(axis=1, keepdims=True)
            e = np.exp(raw)
            proba = e / e.sum(axis=1, keepdims=True)
        out = np.zeros((len(X), len(CRYSTAL_SYSTEMS)))
        out[:, self.classes.astype(int)] = proba
        return out
