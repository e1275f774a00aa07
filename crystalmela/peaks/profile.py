"""Pseudo-Voigt profiles of a peak cluster, Kα1/Kα2 doublets included, fitted by weighted least squares.

Each peak is A·[η·L + (1−η)·G] with G and L unit-area Gaussian and Lorentzian of the same FWHM H
(Thompson–Cox–Hastings' simplification of a Voigt); a doublet adds the same profile at the Kα2
position with R·A. Over a cluster's window the background left after SNIP is a straight line.
``scipy.optimize.least_squares`` fits all of it at once (the peaks of a cluster overlap, so they
must be fitted together), and the covariance (JᵀJ)⁻¹·χ²ᵣ gives each position's standard
uncertainty.
"""
from __future__ import annotations

import numpy as np

_G = np.sqrt(4.0 * np.log(2.0) / np.pi)
_LN2x4 = 4.0 * np.log(2.0)


def pseudo_voigt(x: np.ndarray, centre: float, fwhm: float, eta: float) -> np.ndarray:
    """Unit-area pseudo-Voigt."""
    t = (x - centre) / fwhm
    return eta * (2.0 / (np.pi * fwhm)) / (1.0 + 4.0 * t * t) + (1.0 - eta) * (_G / fwhm) * np.exp(-_LN2x4 * t * t)


def peak_height(area: float, fwhm: float, eta: float) -> float:
    """The maximum of A·pV."""
    return area * (eta * 2.0 / (np.pi * fwhm) + (1.0 - eta) * _G / fwhm)


def ka2_position(two_theta: np.ndarray, ratio: float | None) -> np.ndarray:
    """2θ of the Kα2 line of a Kα1 reflection at ``two_theta``; ``ratio`` = λ(Kα2)/λ(Kα1)."""
    s = np.clip(np.sin(np.radians(two_theta) / 2.0) * ratio, -1.0, 1.0)
    return 2.0 * np.degrees(np.arcsin(s))


def model(params: np.ndarray, x: np.ndarray, n: int, x_mid: float, lam_ratio: float | None,
          ka2_ratio: float) -> np.ndarray:
    """The cluster's profile: ``n`` peaks (centre, area, fwhm, eta each), then background b0, b1."""
    p = params[: 4 * n].reshape(n, 4)
    y = params[4 * n] + params[4 * n + 1] * (x - x_mid)
    for c, a, h, e in p:
        y = y + a * pseudo_voigt(x, c, h, e)
        if lam_ratio is not None:
            y = y + ka2_ratio * a * pseudo_voigt(x, float(ka2_position(c, lam_ratio)), h, e)
    return y


def fit_cluster(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, centres: np.ndarray, heights: np.ndarray,
                fwhm: float, step: float, lam_ratio: float | None, ka2_ratio: float):
    """Fit the peaks at ``centres`` (first guesses) over the window ``x``; returns (params n×4 as
    centre, area, fwhm, eta; their standard uncertainties n×4), or None when the fit fails."""
    from scipy.optimize import least_squares
    n = len(centres)
    x_mid = float(x.mean())
    a0 = np.maximum(heights, 1e-12) / peak_height(1.0, fwhm, 0.5)
    p0, lo, hi = [], [], []
    for c, a in zip(centres, a0):
        p0 += [c, a, fwhm, 0.5]
        lo += [c - max(fwhm, 2 * step), 0.0, max(step * 0.5, fwhm / 4), 0.0]
        hi += [c + max(fwhm, 2 * step), np.inf, fwhm * 4, 1.0]
    floor = float(np.percentile(y, 5))
    p0 += [floor, 0.0]
    lo += [-np.inf, -np.inf]
    hi += [np.inf, np.inf]
    p0 = np.clip(np.array(p0), np.array(lo) + 1e-12, np.array(hi) - 1e-12)

    def residual(p):
        return (model(p, x, n, x_mid, lam_ratio, ka2_ratio) - y) / sigma

    try:
        res = least_squares(residual, p0, bounds=(np.array(lo), np.array(hi)), x_scale="jac", max_nfev=30 * len(p0))
    except (ValueError, np.linalg.LinAlgError):
        return None
    dof = max(1, x.size - len(p0))
    chi2 = float(res.fun @ res.fun) / dof
    try:
        cov = np.linalg.pinv(res.jac.T @ res.jac) * chi2
        esd = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        esd = np.full(len(p0), np.nan)
    return res.x[: 4 * n].reshape(n, 4), esd[: 4 * n].reshape(n, 4)
