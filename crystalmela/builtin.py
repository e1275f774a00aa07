"""The core's own plugin, registered through the ``crystalmela`` entry point like any other:
the weighted-mean ensemble combiner (``trylast``, so combiner plugins answer first) and the
``profile`` feature extractor."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .features import profile
from .plugins import hookimpl
from .specs import FeatureExtractor


@hookimpl(trylast=True)
def crystalmela_combine(probabilities: Mapping[str, np.ndarray], weights: Mapping[str, float],
                        dataset: str) -> np.ndarray | None:
    """Weighted arithmetic mean of the models' distributions (weights default to 1)."""
    if not probabilities:
        return None
    names = list(probabilities)
    w = np.array([float(weights.get(n, 1.0)) for n in names])
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError("ensemble weights must be non-negative and not all zero")
    stacked = np.stack([np.asarray(probabilities[n], dtype=float) for n in names])
    return (w[:, None] * stacked).sum(axis=0) / w.sum()


@hookimpl
def crystalmela_feature_extractors():
    return [FeatureExtractor("profile", "1", extract=profile,
                             description="gridded intensities scaled to [0, 1] (CNN input)")]
