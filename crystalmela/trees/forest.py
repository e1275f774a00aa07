"""Decision forests as plain arrays: exported from a fitted scikit-learn forest, evaluated in NumPy.

Why not keep the scikit-learn object (skops) at prediction time: loading it imports all of
scikit-learn (skops lists every estimator to build its trusted types), ≈ 2 s of the CLI's cold
start (``benchmarks/bench_predict.py``). An ``.npz`` of integer and float arrays, opened with
``allow_pickle=False``, holds no code at all, and the traversal below is the few lines of
scikit-learn's ``predict_proba`` that prediction needs; ``tests/test_forest.py`` checks it against
scikit-learn on random and shipped forests. Training still uses scikit-learn.

Layout (all trees concatenated; node ids are global):

- ``roots[t]``: first node of tree t;
- ``left``/``right``: children of an internal node; for a leaf, ``left = -(row + 1)`` where ``row``
  is its line in ``leaf_values``;
- ``feature``/``threshold``: go left when ``x[feature] <= threshold``. scikit-learn compares the
  float32 feature with a float64 threshold; the threshold is stored rounded down to float32, which
  splits every float32 value the same way and halves the size;
- ``leaf_values``: training samples per class in each leaf (the bootstrap counts for random
  forests; float32 weighted counts when sample or class weights were used); a tree's probability is the leaf's counts over their sum, the forest's the mean over
  trees, exactly as scikit-learn.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crystalmela.plugin_api.errors import ModelNotAvailableError
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

FORMAT = 1
KEYS = ("format", "classes", "n_features", "max_depth", "roots", "left", "right", "feature",
        "threshold", "leaf_values")


def _floor32(t: np.ndarray) -> np.ndarray:
    f = t.astype(np.float32)
    return np.where(f.astype(np.float64) > t, np.nextafter(f, np.float32(-np.inf)), f)


def _compact(v: np.ndarray) -> np.ndarray:
    """Integer counts in the smallest unsigned type; float32 when weights made them fractional."""
    r = np.rint(v)
    if np.abs(v - r).max(initial=0) > 1e-6:
        return v.astype(np.float32)
    for dt in (np.uint8, np.uint16, np.uint32):
        if r.max(initial=0) <= np.iinfo(dt).max:
            return r.astype(dt)
    return v.astype(np.float32)


def walk(X: np.ndarray, roots, left, right, feature, threshold, max_depth: int,
         missing_left: np.ndarray | None = None) -> np.ndarray:
    """The leaf node (n, trees) each row of float32 ``X`` reaches in every tree: left when
    ``x[feature] <= threshold``; a NaN goes where ``missing_left`` says (right when not given, as
    ``NaN <= t`` is false)."""
    rows = np.arange(len(X))[:, None]
    node = np.broadcast_to(roots, (len(X), len(roots))).copy()
    for _ in range(max_depth + 1):
        lft = left[node]
        inner = lft >= 0
        if not inner.any():
            break
        x = X[rows, feature[node]]
        go_left = x <= threshold[node]
        if missing_left is not None:
            go_left |= np.isnan(x) & missing_left[node]
        node = np.where(inner, np.where(go_left, lft, right[node]), node)
    else:
        if (left[node] >= 0).any():
            raise ModelNotAvailableError("trees deeper than their recorded max_depth")
    return node


def read_arrays(path, keys, what: str) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` read without pickle; a missing key or an unreadable file is
    a ModelNotAvailableError naming the file and ``what`` it should be."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise ModelNotAvailableError(f"{path}: not a {what} file (missing {', '.join(missing)})")
            return {k: z[k] for k in keys}
    except ModelNotAvailableError:
        raise
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(f"{path}: not a readable {what} file: {exc}") from None


def node_problem(roots, left, right, feature, n_features: int, n_leaves: int) -> str | None:
    """What is wrong with the node arrays (an index out of range), or None."""
    n = len(left)
    if len(roots) == 0 or roots.min() < 0 or roots.max() >= n:
        return "tree roots out of range"
    internal = left >= 0
    if (left[internal] >= n).any() or (right[internal] < 0).any() or (right[internal] >= n).any():
        return "child index out of range"
    if (-left[~internal] - 1 >= n_leaves).any():
        return "leaf row out of range"
    if (feature[internal] < 0).any() or (feature[internal] >= n_features).any():
        return "feature index out of range"
    return None


def check_rows(X, n_features: int) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"expected {n_features} features per row, got shape {X.shape}")
    return X


# What the export reads of scikit-learn's fitted trees (``tree_``: a Cython object whose attributes are
# documented but not covered by its deprecation policy). Checked before any is read, so a release
# that renames one fails here with its version named, not later as a wrong forest.
TREE_ATTRIBUTES = ("node_count", "n_outputs", "children_left", "children_right", "feature", "threshold",
                   "value", "weighted_n_node_samples", "max_depth")


def _tree_arrays(tree):
    """The ``tree_`` of one fitted scikit-learn tree, checked to have every attribute the export reads."""
    t = getattr(tree, "tree_", None)
    missing = [a for a in TREE_ATTRIBUTES if not hasattr(t, a)]
    if t is None or missing:
        import sklearn
        raise ValueError(f"scikit-learn {sklearn.__version__}: a fitted tree lacks "
                         f"{', '.join(missing) or 'tree_'}; the forest export needs updating for it")
    return t


@dataclass(frozen=True)
class Forest:
    """A classification forest; ``predict_proba`` gives the seven systems in canonical order."""

    classes: np.ndarray      # crystal-system index (0–6) of each column of leaf_values
    n_features: int
    max_depth: int
    roots: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    leaf_values: np.ndarray
    card: object = None      # the ModelCard it was loaded with (preprocessing, calibration)

    @classmethod
    def from_sklearn(cls, est) -> "Forest":
        """Export a fitted RandomForestClassifier / ExtraTreesClassifier (or a single tree)."""
        trees = getattr(est, "estimators_", [est])
        classes = np.asarray(est.classes_)
        if not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0 or classes.max() > 6:
            raise ValueError("forest classes must be crystal-system indices 0–6")
        roots, left, right, feat, thr, counts = [], [], [], [], [], []
        offset = n_leaves = 0
        for tree in trees:
            t = _tree_arrays(tree)
            if t.n_outputs != 1:
                raise ValueError("only single-output forests are supported")
            is_leaf = t.children_left < 0
            rows = np.cumsum(is_leaf) - 1 + n_leaves
            roots.append(offset)
            left.append(np.where(is_leaf, -(rows + 1), t.children_left + offset))
            right.append(np.where(is_leaf, -1, t.children_right + offset))
            feat.append(np.where(is_leaf, 0, t.feature))
            thr.append(np.where(is_leaf, 0.0, t.threshold))
            # value holds class fractions (scikit-learn >= 1.4) or weighted counts (older);
            # times the weighted sample count this gives the (integer) counts either way
            v = t.value[is_leaf, 0, :]
            v = v / v.sum(axis=1, keepdims=True) * t.weighted_n_node_samples[is_leaf][:, None]
            counts.append(v)
            offset += t.node_count
            n_leaves += int(is_leaf.sum())
        return cls(classes=classes.astype(np.int8), n_features=int(est.n_features_in_),
                   max_depth=int(max(tr.tree_.max_depth for tr in trees)),
                   roots=np.asarray(roots, np.int32), left=np.concatenate(left).astype(np.int32),
                   right=np.concatenate(right).astype(np.int32),
                   feature=np.concatenate(feat).astype(np.int16),
                   threshold=_floor32(np.concatenate(thr)),
                   leaf_values=_compact(np.concatenate(counts)))

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as fh:
            np.savez_compressed(fh, format=np.int32(FORMAT), classes=self.classes,
                                n_features=np.int32(self.n_features), max_depth=np.int32(self.max_depth),
                                roots=self.roots, left=self.left, right=self.right, feature=self.feature,
                                threshold=self.threshold, leaf_values=self.leaf_values)

    @classmethod
    def load(cls, path: str | Path) -> "Forest":
        """Read and validate; any inconsistency is a ModelNotAvailableError naming the file."""
        a = read_arrays(path, KEYS, "forest")
        if int(a["format"]) != FORMAT:
            raise ModelNotAvailableError(f"{path}: forest format {int(a['format'])}, expected {FORMAT}")
        forest = cls(classes=a["classes"], n_features=int(a["n_features"]), max_depth=int(a["max_depth"]),
                     roots=a["roots"], left=a["left"], right=a["right"], feature=a["feature"],
                     threshold=a["threshold"], leaf_values=a["leaf_values"])
        problem = forest._problem()
        if problem:
            raise ModelNotAvailableError(f"{path}: inconsistent forest file: {problem}")
        return forest

    def _problem(self) -> str | None:
        n = len(self.left)
        n_leaves = len(self.leaf_values)
        if not (len(self.right) == len(self.feature) == len(self.threshold) == n):
            return "node arrays differ in length"
        if self.leaf_values.ndim != 2 or self.leaf_values.shape[1] != len(self.classes):
            return "leaf_values does not have one column per class"
        if len(set(self.classes.tolist())) != len(self.classes) or not np.isin(self.classes, range(7)).all():
            return "classes are not distinct crystal-system indices 0–6"
        if self.leaf_values.dtype.kind not in "uf" or (n_leaves and (
                (self.leaf_values < 0).any() or not (self.leaf_values.sum(axis=1) > 0).all())):
            return "every leaf needs non-negative class counts with a positive sum"
        return node_problem(self.roots, self.left, self.right, self.feature, self.n_features, n_leaves)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (n, 7) in CRYSTAL_SYSTEMS order; scikit-learn's result for the same input."""
        X = check_rows(X, self.n_features)
        node = walk(X, self.roots, self.left, self.right, self.feature, self.threshold, self.max_depth)
        counts = self.leaf_values[-self.left[node] - 1].astype(np.float64)   # (n, trees, classes)
        proba = (counts / counts.sum(axis=2, keepdims=True)).mean(axis=1)
        out = np.zeros((len(X), len(CRYSTAL_SYSTEMS)))
        out[:, self.classes.astype(int)] = proba
        return out
