"""Registers the trial-indexing features and their extremely-randomized-trees classifier.

Features (``lattice_fit``, version 13, 97 numbers): for the first 20 peaks, the best cubic P/I/F,
tetragonal P/I, hexagonal P, rhombohedral and orthorhombic trial cell's figure of merit, fraction of
peaks indexed and lines per peak (plus c/a for the two-parameter lattices), the same cells' figure
and fraction in a window twice as wide, and the hexagonal cell's under c-glide / 6₃ absences
(``indexing.lattice_features``, 49); then 1/d² of the first ten peaks and the number of peaks (11);
each family against the best in both windows (``indexing.relative_figures``, 16); the hP absence
gains (``indexing.absence_gains``, 2); the primitive monoclinic cell's figures
(``monoclinic.mono_features``, 6); the triclinic cell's (``triclinic.tric_features``, 6); the two
cells' lattice two-fold axes (``lattice_symmetry.symmetry_features``, 7). Peaks here
are picked for indexing (above a background estimate, sub-step positions, resolved Cu Kα2 lines
dropped), not the paper's every-local-maximum list.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from crystalmela.plugin_api import Evidence, FeatureExtractor, Pattern, hookimpl
from crystalmela.plugin_api import forests
from crystalmela.plugin_api.peaks import local_maxima
from crystalmela.plugin_api.wavelengths import CU_KA1, CU_KA2

from .cells import evidence
from .indexing import N_OBS, absence_gains, lattice_features, relative_figures
from .lattice_symmetry import symmetry_features
from .monoclinic import mono_features
from .triclinic import tric_features

NAME = "lattice_fit"
FEATURE = "lattice_fit"
N_PEAKS = 10
REL_HEIGHT = 0.02        # a peak rises this fraction of the strongest above the background
BACKGROUND_DEG = 1.5     # morphological-opening window: wider than any peak, narrower than humps
APART_DEG = 0.06         # a peak is the highest point within ± this
MIN_TWO_THETA = 2.0
NOISE_SIGMAS = 5.0       # … and this many times the counting noise
KA2_TOL_DEG = 0.04       # a peak this close to a stronger peak's Kα2 position is that peak's Kα2 line
KA2_MAX_HEIGHT = 0.85    # … when it is at most this fraction of that peak's height (0.5 + overlap)


def _window(y: np.ndarray, width: int, fn) -> np.ndarray:
    half = width // 2
    return fn(sliding_window_view(np.pad(y, half, mode="edge"), 2 * half + 1), axis=1)


def pick_peaks(pattern: Pattern) -> np.ndarray:
    """2θ of the pattern's peaks, refined below the grid step by a parabola through three points.

    The background is a morphological opening (running minimum, then running maximum) over
    ``BACKGROUND_DEG``; written with NumPy for the same cold-start reason as
    ``crystalmela.plugin_api.peaks.local_maxima`` (scipy.ndimage/signal imports cost a second)."""
    return peak_table(pattern)["two_theta"]


def peak_table(pattern: Pattern) -> dict[str, np.ndarray]:
    """``pick_peaks``' peaks with what they were picked from: ``two_theta`` (the peaks kept),
    ``index`` (grid index of every picked maximum), ``ka2`` (which of those were dropped as Kα2
    lines), ``net`` (smoothed profile minus background), ``background``, ``noise`` (counting noise
    per point) and ``step``. Empty arrays for a pattern with nothing to pick."""
    y = np.asarray(pattern.y, dtype=float)
    step = pattern.grid.step if pattern.grid is not None else float(np.median(np.diff(pattern.x)))
    empty = {"two_theta": np.zeros(0), "index": np.zeros(0, int), "ka2": np.zeros(0, bool), "net": np.zeros(0),
             "background": np.zeros(0), "noise": np.zeros(0), "step": step}
    if y.size < 5:
        return empty
    # counting noise grows as √counts: fit k in σ = k·√background robustly from the point-to-point
    # residual (most points are background), so humps and high backgrounds get a higher threshold.
    # Heights are measured on a 5-point mean, whose lower envelope sits near the mean background.
    ys = _window(y, 5, np.mean)
    w = max(3, int(round(BACKGROUND_DEG / step)))
    base = _window(_window(ys, w, np.min), w, np.max)
    net = ys - base
    top = net.max()
    if top <= 0:
        return empty
    root = np.sqrt(np.maximum(base, 1e-3 * top))
    noise = 1.4826 * np.median(np.abs(y - ys) / root) * root
    idx = local_maxima(y)
    apart = _window(y, max(3, 2 * int(round(APART_DEG / step)) + 1), np.max)
    idx = idx[(net[idx] >= np.maximum(REL_HEIGHT * top, NOISE_SIGMAS * noise[idx])) & (y[idx] >= apart[idx]) & (pattern.x[idx] >= MIN_TWO_THETA)]
    idx = idx[(idx > 0) & (idx < y.size - 1)]
    a, b, c = y[idx - 1], y[idx], y[idx + 1]
    den = a - 2 * b + c
    off = np.where(den < 0, 0.5 * (a - c) / np.where(den < 0, den, -1.0), 0.0)
    tt = pattern.x[idx] + np.clip(off, -0.5, 0.5) * step
    ka2 = ka2_partners(tt, net[idx])
    return {"two_theta": tt[~ka2], "index": idx, "ka2": ka2, "net": net, "background": base, "noise": noise,
            "step": step}


def ka2_partners(two_theta: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Mask of peaks that are the resolved Cu Kα2 line of a stronger peak just below them.

    An unstripped Kα2 doublet (most laboratory scans) splits every line above ≈ 40° into two peaks;
    left in, the second is a line no lattice indexes and halves the fraction indexed of the true cell.
    Patterns from other anodes are converted to the Cu Kα1 scale through d, so their Kα2 lines sit
    at the Cu ratio only approximately; they are kept (and cost some fraction indexed)."""
    if two_theta.size < 2:
        return np.zeros(two_theta.size, dtype=bool)
    s = np.sin(np.radians(two_theta / 2.0)) * (CU_KA2 / CU_KA1)
    partner = np.where(s < 1.0, 2.0 * np.degrees(np.arcsin(np.minimum(s, 1.0))), np.inf)
    close = np.abs(two_theta[None, :] - partner[:, None]) <= KA2_TOL_DEG      # [i, j]: j is i's Kα2?
    close &= height[None, :] <= KA2_MAX_HEIGHT * height[:, None]
    close &= two_theta[None, :] > two_theta[:, None]
    return close.any(axis=0)


def analyse(pattern: Pattern) -> tuple[np.ndarray, dict, int]:
    """The features, each lattice family's refined cell (``indexing.keep_cell`` dicts by family, mP
    and aP included) and the number of peaks indexed against."""
    tt = pick_peaks(pattern)
    wl = pattern.grid.wavelength if pattern.grid is not None else pattern.wavelength
    inv_d2 = np.zeros(N_PEAKS + 1, dtype=np.float32)
    q = (2.0 * np.sin(np.radians(tt[:N_PEAKS] / 2.0)) / wl) ** 2
    inv_d2[: q.size] = q
    inv_d2[N_PEAKS] = tt.size
    cells: dict = {}
    lat = lattice_features(tt, wl, cells=cells)
    mono_cell_fig, tric_cell_fig = {}, {}
    mono, mono_cell = mono_features(tt, wl, lat, mono_cell_fig)
    tric, tric_cell = tric_features(tt, wl, mono, tric_cell_fig)
    cells.update({k: v for k, v in (("mP", mono_cell_fig), ("aP", tric_cell_fig)) if v})
    features = np.concatenate([lat, inv_d2, relative_figures(lat), relative_figures(lat, "wide"),
                               absence_gains(lat), mono, tric, symmetry_features(tric_cell, mono_cell)])
    return features, cells, min(tt.size, N_OBS)


# What ``extract`` found, kept for ``explain`` (which predict calls next on the same pattern), so
# showing the cells costs no second search; keyed by the pattern's content, a few entries, and
# ``extract`` never reads it (a benchmark repeating a pattern times the full search each time).
_FOUND: OrderedDict = OrderedDict()
_FOUND_MAX = 8
_FOUND_LOCK = threading.Lock()


def _key(pattern: Pattern) -> bytes:
    wl = pattern.grid.wavelength if pattern.grid is not None else pattern.wavelength
    h = hashlib.blake2b(np.ascontiguousarray(pattern.x, float).tobytes(), digest_size=16)
    h.update(np.ascontiguousarray(pattern.y, float).tobytes())
    h.update(np.float64(wl or 0.0).tobytes())
    return h.digest()


def lattice_fit_features(pattern: Pattern) -> np.ndarray:
    features, cells, n = analyse(pattern)
    with _FOUND_LOCK:
        _FOUND[_key(pattern)] = (cells, n)
        while len(_FOUND) > _FOUND_MAX:
            _FOUND.popitem(last=False)
    return features


def explain(pattern: Pattern) -> Evidence:
    """The cells that index the pattern's peaks (``cells.describe``, ``cells.as_data``): from the
    search ``extract`` just ran on this pattern, or a new one."""
    with _FOUND_LOCK:
        found = _FOUND.pop(_key(pattern), None)
    if found is None:
        _, *found = analyse(pattern)
    return evidence(*found)


# Named configurations of the extra trees; ``wide`` ships (a quarter of the features tried at each
# split instead of their square root: better on synthetic lab-like val at the same size,
# docs/experiments.md).
CONFIGS = {
    "budget": {"n_estimators": 100, "max_depth": 30, "min_samples_leaf": 10, "min_samples_split": 2,
               "criterion": "gini", "max_features": "sqrt"},
    "compact": {"n_estimators": 40, "max_depth": None, "min_samples_leaf": 20, "min_samples_split": 2,
                "criterion": "gini", "max_features": "sqrt"},
    "wide": {"n_estimators": 100, "max_depth": 30, "min_samples_leaf": 10, "min_samples_split": 2,
             "criterion": "gini", "max_features": 0.25},
}
DEFAULT_CONFIG = "wide"


@hookimpl
def crystalmela_feature_extractors():
    return [FeatureExtractor(FEATURE, "13", lattice_fit_features,
                             "trial-indexing figures of merit (cubic … triclinic), 1/d² of 10 peaks, "
                             "each lattice against the best (both windows), hP absence gains, two-fold axes of "
                             "the mP and aP cells' lattices", explain=explain)]


@hookimpl
def crystalmela_classifiers():
    return [forests.forest_classifier(NAME, "0.2.0", feature=FEATURE, package_dir=Path(__file__).parent,
                                             configs=CONFIGS, default=DEFAULT_CONFIG, estimator="ExtraTreesClassifier",
                                             description="extra trees on trial-indexing figures of merit and 1/d² peaks")]
