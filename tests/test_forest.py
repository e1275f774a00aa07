"""Forests exported to plain arrays predict exactly as scikit-learn, and bad files are refused."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from crystalmela.plugin_api.errors import ModelNotAvailableError
from crystalmela.trees.forest import KEYS, Forest


def _data(n=600, classes=(0, 1, 2, 4, 6), seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[:, 2] = np.round(X[:, 2], 1)                    # ties: thresholds between repeated values
    rule = (X[:, 0] > 0) + 2 * (X[:, 1] + X[:, 2] > 0.3) + (X[:, 3] > 1)     # 0..4
    y = np.asarray(classes)[rule]
    return X, y


@pytest.mark.parametrize("make", [
    lambda: RandomForestClassifier(n_estimators=15, random_state=0),
    lambda: RandomForestClassifier(n_estimators=10, min_samples_leaf=5, max_depth=6, random_state=1),
    lambda: ExtraTreesClassifier(n_estimators=15, random_state=0),
    lambda: ExtraTreesClassifier(n_estimators=8, class_weight="balanced", random_state=0),
    lambda: DecisionTreeClassifier(random_state=0),
])
def test_predicts_exactly_as_sklearn(tmp_path, make):
    X, y = _data()
    est = make().fit(X, y)
    Forest.from_sklearn(est).save(tmp_path / "f.npz")
    forest = Forest.load(tmp_path / "f.npz")
    Xt = np.concatenate([_data(300, seed=1)[0], X[:50]])
    expected = np.zeros((len(Xt), 7))
    expected[:, est.classes_] = est.predict_proba(Xt)
    got = forest.predict_proba(Xt)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert got[:, [3, 5]].sum() == 0                     # classes absent from training get 0
    np.testing.assert_allclose(forest.predict_proba(Xt[0]), expected[:1], atol=1e-12)


def test_rejects_wrong_feature_count(tmp_path):
    X, y = _data()
    forest = Forest.from_sklearn(RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y))
    with pytest.raises(ValueError, match="expected 6 features"):
        forest.predict_proba(np.zeros((2, 5)))


def _saved(tmp_path):
    X, y = _data()
    Forest.from_sklearn(RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)).save(tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("threshold"), "missing threshold"),
    (lambda a: a.update(format=np.int32(9)), "forest format 9"),
    (lambda a: a["left"].__setitem__(a["left"].argmax(), 10**6), "child index out of range"),
    (lambda a: a["feature"].__setitem__(0, 17), "feature index out of range"),
    (lambda a: a.update(classes=np.array([0, 1, 2, 4, 9], np.int8)), "crystal-system indices"),
    (lambda a: a.update(leaf_values=a["leaf_values"][:, :3]), "one column per class"),
    (lambda a: a.update(leaf_values=np.zeros_like(a["leaf_values"])), "positive sum"),
    (lambda a: a.update(roots=np.array([-1], np.int32)), "roots out of range"),
    (lambda a: a.update(left=a["left"][:-1]), "differ in length"),
])
def test_inconsistent_files_are_refused(tmp_path, change, message):
    arrays = _saved(tmp_path)
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelNotAvailableError, match=message):
        Forest.load(tmp_path / "bad.npz")


def test_non_array_files_are_refused_without_running_code(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ModelNotAvailableError, match="not a readable forest file"):
        Forest.load(tmp_path / "junk.npz")
    arrays = _saved(tmp_path)
    arrays["threshold"] = np.array([object()], dtype=object)     # would need pickle to read
    np.savez(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(ModelNotAvailableError, match="not a readable forest file"):
        Forest.load(tmp_path / "pickled.npz")
    assert set(KEYS) <= set(_saved(tmp_path))


def test_a_scikit_learn_tree_without_the_arrays_the_export_reads_is_refused_with_its_version():
    import sklearn

    class Renamed:                      # a future release's tree_, one attribute renamed
        classes_ = np.arange(7)
        n_features_in_ = 3

        class tree_:
            n_outputs = 1

    with pytest.raises(ValueError, match=f"scikit-learn {sklearn.__version__}: a fitted tree lacks node_count"):
        Forest.from_sklearn(Renamed())
