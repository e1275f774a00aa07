"""Classification metrics used everywhere results are reported: the paper's (accuracy, top-2, weighted
F1, per-class precision / recall / F1, confusion matrix), balanced accuracy, and calibration (ECE and
the reliability curve). scikit-learn computes the standard ones; top-2 and calibration are a few
lines on the probability matrix."""
from __future__ import annotations

import numpy as np

from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

SUMMARY_KEYS = ("accuracy", "top2_accuracy", "balanced_accuracy", "f1_weighted", "ece")


def top_k_accuracy(y_true, proba, k: int = 2) -> float:
    """Share of rows whose true class is among the k most probable (ties broken by class order)."""
    y_true = np.asarray(y_true)
    top = np.argsort(-np.asarray(proba), axis=1, kind="stable")[:, :k]
    return float((top == y_true[:, None]).any(axis=1).mean())


def reliability(y_true, proba, bins: int = 10) -> dict:
    """Confidence (top-1 probability) against accuracy in equal-width bins, and the expected
    calibration error: the bin-size-weighted mean |accuracy − confidence|."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=float)
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    which = np.minimum((conf * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(which, weights=correct, minlength=bins) / count
        mean_conf = np.bincount(which, weights=conf, minlength=bins) / count
    gap = np.where(count > 0, np.abs(acc - mean_conf), 0.0)
    ece = float((gap * count).sum() / max(len(y_true), 1))
    return {"ece": ece, "bin_edges": np.linspace(0, 1, bins + 1).tolist(), "count": count.tolist(),
            "accuracy": [None if c == 0 else float(a) for a, c in zip(acc, count)],
            "confidence": [None if c == 0 else float(m) for m, c in zip(mean_conf, count)]}


def _balanced(y_true, pred) -> float:
    """Mean recall over the classes present in y_true (predictions of absent classes count as
    errors; scikit-learn warns about them, and about a set where one class is all there is, whose
    recall is still right: both expected here)."""
    import warnings

    from sklearn.metrics import balanced_accuracy_score
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        warnings.filterwarnings("ignore", message="A single label was found")
        return float(balanced_accuracy_score(y_true, pred))


def classification_metrics(y_true, proba, *, per_class: bool = False) -> dict:
    """accuracy, top-2 accuracy, balanced accuracy, weighted F1, ECE, confusion matrix, n; with
    ``per_class`` also precision / recall / F1 / support for each crystal system."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
    y_true = np.asarray(y_true)
    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape[1] != len(CRYSTAL_SYSTEMS) or len(proba) != len(y_true):
        raise ValueError(f"expected ({len(y_true)}, 7) probabilities, got {proba.shape}")
    pred = proba.argmax(axis=1)
    labels = list(range(len(CRYSTAL_SYSTEMS)))
    out = {
        "n": int(len(y_true)),
        "accuracy": float((pred == y_true).mean()),
        "top2_accuracy": top_k_accuracy(y_true, proba, 2),
        "balanced_accuracy": _balanced(y_true, pred),
        "f1_weighted": float(f1_score(y_true, pred, labels=labels, average="weighted", zero_division=0)),
        "ece": reliability(y_true, proba)["ece"],
        "confusion_matrix": confusion_matrix(y_true, pred, labels=labels).tolist(),
    }
    if per_class:
        p, r, f, s = precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
        out["per_class"] = {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                "support": int(s[i])} for i, c in enumerate(CRYSTAL_SYSTEMS)}
    return out


def mean_std(folds: list[dict]) -> dict:
    """Mean and standard deviation over folds of the summary metrics (the paper's "0.666 (0.026)"),
    the summed confusion matrix, and per-class values averaged when the folds have them."""
    out = {"n": int(sum(f["n"] for f in folds)), "folds": len(folds)}
    for k in SUMMARY_KEYS:
        v = np.array([f[k] for f in folds], dtype=float)
        out[k] = float(v.mean())
        out[k + "_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    out["confusion_matrix"] = np.sum([f["confusion_matrix"] for f in folds], axis=0).tolist()
    if all("per_class" in f for f in folds):
        out["per_class"] = {c: {m: float(np.mean([f["per_class"][c][m] for f in folds]))
                                for m in ("precision", "recall", "f1")} | {
                                "support": int(sum(f["per_class"][c]["support"] for f in folds))}
                            for c in CRYSTAL_SYSTEMS}
    return out


def rate_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate k / n (scipy): on a few hundred structures a rate moves by
    several points from sampling alone, and a figure compared with another needs that said."""
    from scipy.stats import binomtest
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"a rate needs 0 ≤ k ≤ n and n ≥ 1, got k={k}, n={n}")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def paired_test(right_a, right_b) -> dict:
    """Exact McNemar test of two classifiers scored on the same items (booleans, one per item): only
    the items where they disagree count; under "equally good" each is a fair coin. Returns the two
    discordant counts and the two-sided p-value."""
    from scipy.stats import binomtest
    a, b = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"expected two equal-length vectors, got shapes {a.shape} and {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    p = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    return {"only_a": only_a, "only_b": only_b, "p_value": float(p)}
