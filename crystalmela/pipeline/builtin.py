"""The core's own plugin, registered through the ``crystalmela`` entry point like any other:
the weighted geometric-mean ensemble combiner (``trylast``, so combiner plugins answer first) and
the ``profile`` feature extractor."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from crystalmela.pipeline.ensemble import EPS
from crystalmela.plugin_api.peaks import profile
from crystalmela.plugins import hookimpl
from crystalmela.plugin_api.specs import FeatureExtractor


@hookimpl(trylast=True)
def crystalmela_combine(probabilities: Mapping[str, np.ndarray], weights: Mapping[str, float],
                        dataset: str) -> np.ndarray | None:
    """Weighted geometric mean of the models' distributions, renormalised (log-linear pooling;
    weights default to 1; probabilities clipped at 1e-4, as forests give exact zeros).

    Chosen over the arithmetic mean on val-split patterns, not on the hold-out
    (``benchmarks/compare_combiners.py``: higher top-1 and lower NLL, clean and augmented): a system
    one model rules out stays unlikely instead of keeping a third of its mass."""
    if not probabilities:
        return None
    names = list(probabilities)
    w = np.array([float(weights.get(n, 1.0)) for n in names])
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError("ensemble weights must be non-negative and not all zero")
    stacked = np.stack([np.asarray(probabilities[n], dtype=float) for n in names])
    logp = (w[:, None] * np.log(np.clip(stacked, EPS, 1.0))).sum(axis=0) / w.sum()
    e = np.exp(logp - logp.max())
    return e / e.sum()


@hookimpl
def crystalmela_feature_extractors():
    return [FeatureExtractor("profile", "1", extract=profile,
                             description="gridded intensities scaled to [0, 1] (CNN input)")]
