"""Registers Suzuki et al.'s features and the extremely-randomized-trees classifier.

Features: peak positions converted to 1/d² (Å⁻², at the grid's wavelength, Cu Kα1 for the paper grid)
for the first ten peaks (zero-filled), plus the number of peaks: 11 numbers. 1/d² is linear in the
Miller indices' quadratic form, which is what makes symmetry visible to trees.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crystalmela.plugin_api import FeatureExtractor, Pattern, hookimpl
from crystalmela.plugin_api.peaks import explain_peaks, peak_indices
from crystalmela.plugin_api import forests

NAME = "extra_trees"
FEATURE = "suzuki_inv_d2"
N_PEAKS = 10



def inv_d2_peaks(pattern: Pattern) -> np.ndarray:
    idx = peak_indices(pattern)
    out = np.zeros(N_PEAKS + 1, dtype=np.float32)
    theta = np.radians(pattern.x[idx[:N_PEAKS]] / 2.0)
    inv_d2 = (2.0 * np.sin(theta) / pattern.grid.wavelength) ** 2
    out[: inv_d2.size] = inv_d2
    out[N_PEAKS] = idx.size
    return out


# Named configurations; "suzuki" follows Suzuki et al. 2020 (fully grown extra trees, 288 MB as
# shipped arrays at 160k patterns); "budget" is the shipped default, the largest that fits the 50 MB
# budget of all nine models; "compact" is a 1.6 MB one. Measured figures in docs/models.md.
CONFIGS = {
    "suzuki": {"n_estimators": 250, "max_depth": None, "min_samples_leaf": 1, "min_samples_split": 2,
               "criterion": "gini", "max_features": "sqrt"},
    "compact": {"n_estimators": 40, "max_depth": None, "min_samples_leaf": 20, "min_samples_split": 2,
                "criterion": "gini", "max_features": "sqrt"},
    "budget": {"n_estimators": 100, "max_depth": 30, "min_samples_leaf": 10, "min_samples_split": 2,
               "criterion": "gini", "max_features": "sqrt"},
}
DEFAULT_CONFIG = "budget"


@hookimpl
def crystalmela_feature_extractors():
    return [FeatureExtractor(FEATURE, "1", inv_d2_peaks, "1/d² of the first 10 peaks and the number of peaks",
                             explain=explain_peaks)]


@hookimpl
def crystalmela_classifiers():
    return [forests.forest_classifier(NAME, "0.1.0", feature=FEATURE, package_dir=Path(__file__).parent,
                                             configs=CONFIGS, default=DEFAULT_CONFIG, estimator="ExtraTreesClassifier",
                                             description="extremely randomized trees on 1/d² (Suzuki et al. 2020)")]
