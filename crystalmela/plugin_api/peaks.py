"""Feature helpers shared by plugins: public API, so built-in and third-party models use the same door."""
from __future__ import annotations

import numpy as np

from crystalmela.plugin_api.pattern import Pattern
from crystalmela.plugin_api.specs import Evidence


def profile(pattern: Pattern) -> np.ndarray:
    """The gridded intensities scaled to [0, 1] (the paper's CNN input), as float32."""
    if pattern.grid is None:
        raise ValueError("profile() needs a pattern on a grid (Pattern.to_grid)")
    return (pattern.y / pattern.grid.normalize_max).astype(np.float32)


def local_maxima(y: np.ndarray) -> np.ndarray:
    """``scipy.signal.find_peaks(y)[0]`` with no conditions: samples (plateau midpoints, rounded
    down) higher than both neighbours, never the first or last sample.

    Written out because it is the only part of scipy.signal that prediction needs, and importing
    scipy.signal costs ≈ 1.4 s (scipy 1.17 rewrites hundreds of docstrings at import), a third of the
    CLI's cold start. ``tests/test_features.py`` checks it equals find_peaks, plateaus included."""
    y = np.asarray(y)
    if y.size < 3:
        return np.zeros(0, dtype=np.intp)
    starts = np.r_[0, np.flatnonzero(y[1:] != y[:-1]) + 1]      # runs of equal values
    ends = np.r_[starts[1:] - 1, y.size - 1]
    v = y[starts]
    peak = (v[1:-1] > v[:-2]) & (v[1:-1] > v[2:])
    return ((starts[1:-1][peak] + ends[1:-1][peak]) // 2).astype(np.intp)


def peak_indices(pattern: Pattern, **find_peaks_kwargs) -> np.ndarray:
    """Indices of the pattern's local maxima (paper §3.2: no height threshold by default). Keyword
    arguments (``prominence=...`` etc., to filter noise) go to ``scipy.signal.find_peaks``."""
    if not find_peaks_kwargs:
        return local_maxima(pattern.y)
    from scipy.signal import find_peaks
    idx, _ = find_peaks(pattern.y, **find_peaks_kwargs)
    return idx


def describe_peaks(pattern: Pattern, idx: np.ndarray, first: int = 10, weak: float = 0.05) -> Evidence:
    """``FeatureExtractor.explain`` evidence for peak-position features: how many maxima were taken as
    peaks, where the first ``first`` lie and how many of those are weaker than ``weak`` × the strongest,
    and where the strongest is; as lines and as data. The paper's features take every local maximum
    (§3.2), so on a measured scan the first ten are often counting noise at the low-angle end: this
    shows it."""
    idx = np.asarray(idx, dtype=np.intp)
    if idx.size == 0:
        return Evidence(["no local maximum: the peak features are all zero"],
                        {"maxima": 0, "first_two_theta": [], "weak_of_first": 0, "weak_below": float(weak),
                         "strongest_two_theta": None})
    head = idx[:first]
    top = float(pattern.y[idx].max())
    n_weak = int((pattern.y[head] < weak * top).sum()) if top > 0 else 0
    strongest = float(pattern.x[idx[np.argmax(pattern.y[idx])]])
    where = " ".join(f"{t:.2f}" for t in pattern.x[head])
    return Evidence([f"{idx.size} local maxima taken as peaks (every one, no height threshold: paper §3.2)",
                     f"first {head.size} at 2θ {where}° ({n_weak} of them below {weak:.0%} of the strongest)",
                     f"strongest at 2θ {strongest:.2f}°"],
                    {"maxima": int(idx.size), "first_two_theta": [round(float(t), 4) for t in pattern.x[head]],
                     "weak_of_first": n_weak, "weak_below": float(weak), "strongest_two_theta": round(strongest, 4)})




def explain_peaks(pattern: Pattern) -> Evidence:
    """``FeatureExtractor.explain`` for features read off every local maximum (the paper's and
    Suzuki et al.'s): ``describe_peaks`` of ``peak_indices``."""
    return describe_peaks(pattern, peak_indices(pattern))


__all__ = ["describe_peaks", "explain_peaks", "local_maxima", "peak_indices", "profile"]
