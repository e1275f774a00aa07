"""Registers the paper's peak features and the random-forest classifier.

Features (paper §3.2): peaks found with ``scipy.signal.find_peaks`` on the gridded pattern, no height
threshold; the 2θ of the first ten peaks (zero-filled when fewer), the number of peaks in 0–90°, and
the 2θ of the strongest peak: 12 numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crystalmela import PAPER_GRID, ClassifierSpec, FeatureExtractor, Pattern, hookimpl
from crystalmela.features import peak_indices
from crystalmela.models import require_model

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


def load(dataset: str):
    require_model(NAME, Path(__file__).parent, dataset)
    raise NotImplementedError("loading trained random_forest models arrives with the models issue")


@hookimpl
def crystalmela_feature_extractors():
    return [FeatureExtractor(FEATURE, "1", paper_peaks,
                             "2θ of the first 10 peaks, number of peaks, 2θ of the strongest (paper §3.2)")]


@hookimpl
def crystalmela_classifiers():
    return [ClassifierSpec(NAME, "0.1.0", feature=FEATURE, load=load, grid=PAPER_GRID,
                           description="random forest on peak positions (CrystalMELA paper)")]
