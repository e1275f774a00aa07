"""Feature helpers shared by plugins: public API, so built-in and third-party models use the same door."""
from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

from .pattern import Pattern


def profile(pattern: Pattern) -> np.ndarray:
    """The gridded intensities scaled to [0, 1] (the paper's CNN input), as float32."""
    if pattern.grid is None:
        raise ValueError("profile() needs a pattern on a grid (Pattern.to_grid)")
    return (pattern.y / pattern.grid.normalize_max).astype(np.float32)


def peak_indices(pattern: Pattern, **find_peaks_kwargs) -> np.ndarray:
    """Indices of local maxima found by ``scipy.signal.find_peaks`` (paper §3.2: no height threshold
    by default; pass ``prominence=...`` etc. to filter noise)."""
    idx, _ = find_peaks(pattern.y, **find_peaks_kwargs)
    return idx
