"""Registers the paper's peak features and the random-forest classifier.

Features (paper §3.2): peaks found with ``scipy.signal.find_peaks`` on the gridded pattern, no height
threshold; the 2θ of the first ten peaks (zero-filled when fewer), the number of peaks in 0–90°, and
the 2θ of the strongest peak: 12 numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crystalmela.plugin_api import FeatureExtractor, Pattern, hookimpl
from crystalmela.plugin_api.peaks import explain_peaks, peak_indices
from crystalmela.plugin_api import forests

NAME = "random_forest"
FEATURE = "paper_peaks"
N_PEAKS = 10



def paper_peaks(pattern: Pattern) -> np.ndarray:
    idx = peak_indices(pattern)
    out = np.zeros(N_PEAKS + 2, dtype=np.float32)
    first = pattern.x[idx[:N_PEAKS]]
    out[: first.size] = first
    out[N_PEAKS] = idx.size
    if idx.size:
        out[N_PEAKS + 1] = pattern.x[idx[np.argmax(pattern.y[idx])]]
    return out


# Named configurations; ``crystalmela train --config paper`` reaches the paper's forest (§3.2).
# "budget" is the shipped default, the largest that fits the 50 MB budget of all nine models; on the
# 200k synthetic set it is 1.7 points below "paper" (106 MB as shipped arrays); "compact" is a 1.8 MB
# one. Measured figures in docs/models.md.
CONFIGS = {
    "paper": {"n_estimators": 250, "max_depth": 30, "min_samples_leaf": 1, "min_samples_split": 2,
              "criterion": "gini", "max_features": "sqrt"},
    "compact": {"n_estimators": 40, "max_depth": 30, "min_samples_leaf": 25, "min_samples_split": 2,
                "criterion": "gini", "max_features": "sqrt"},
    "budget": {"n_estimators": 100, "max_depth": 30, "min_samples_leaf": 10, "min_samples_split": 2,
               "criterion": "gini", "max_features": "sqrt"},
}
DEFAULT_CONFIG = "budget"


@hookimpl
def crystalmela_feature_extractors():
    return [FeatureExtractor(FEATURE, "1", paper_peaks,
                             "2θ of the first 10 peaks, number of peaks, 2θ of the strongest (paper §3.2)",
                             explain=explain_peaks)]


@hookimpl
def crystalmela_classifiers():
    return [forests.forest_classifier(NAME, "0.1.0", feature=FEATURE, package_dir=Path(__file__).parent,
                                             configs=CONFIGS, default=DEFAULT_CONFIG, estimator="RandomForestClassifier",
                                             description="random forest on peak positions (CrystalMELA paper)")]
