"""Classification metrics used everywhere results are reported (the paper's, plus balanced ones)."""
from __future__ import annotations

import numpy as np

from .systems import CRYSTAL_SYSTEMS


def classification_metrics(y_true, proba) -> dict:
    """accuracy, top-2 accuracy, balanced accuracy, weighted F1, confusion matrix, n."""
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score
    y_true = np.asarray(y_true)
    proba = np.asarray(proba)
    pred = proba.argmax(axis=1)
    top2 = np.argsort(-proba, axis=1)[:, :2]
    labels = list(range(len(CRYSTAL_SYSTEMS)))
    return {
        "n": int(len(y_true)),
        "accuracy": float((pred == y_true).mean()),
        "top2_accuracy": float((top2 == y_true[:, None]).any(axis=1).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, pred)),
        "f1_weighted": float(f1_score(y_true, pred, labels=labels, average="weighted", zero_division=0)),
        "confusion_matrix": confusion_matrix(y_true, pred, labels=labels).tolist(),
    }
