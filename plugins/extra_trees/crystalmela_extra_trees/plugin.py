"""Registers Suzuki et al.'s features and the extremely-randomized-trees classifier.

Features: peak positions converted to 1/d² (Å⁻², at the grid's wavelength, Cu Kα1 for the paper grid)
for the first ten peaks (zero-filled), plus the number of peaks: 11 numbers. 1/d² is linear in the
Miller indices' quadratic form, which is what makes symmetry visible to trees.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crystalmela import PAPER_GRID, ClassifierSpec, FeatureExtractor, Pattern, hookimpl
from crystalmela.features import peak_indices
from crystalmela.models import require_model

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


def load(dataset: str):
    require_model(NAME, Path(__file__).parent, dataset)
    raise NotImplementedError("loading trained extra_trees models arrives with the models issue")


@hookimpl
def crystalmela_feature_extractors():
    return [FeatureExtractor(FEATURE, "1", inv_d2_peaks, "1/d² of the first 10 peaks and the number of peaks")]


@hookimpl
def crystalmela_classifiers():
    return [ClassifierSpec(NAME, "0.1.0", feature=FEATURE, load=load, grid=PAPER_GRID,
                           description="extremely randomized trees on 1/d² (Suzuki et al. 2020)")]
