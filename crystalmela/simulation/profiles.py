"""Render a reflection list as a powder profile on a 2θ grid: LP correction, peak shapes, Kα2.

Defaults follow the paper's EXPO settings (§2): Pearson VII, classical Lorentz–polarisation, Caglioti
U = V = 0 and W = FWHM². The paper does not state the FWHM or the Pearson VII exponent; 0.1° and
m = 1.5 (between Lorentzian m=1 and Gaussian m→∞) are this project's documented choice for a lab
diffractometer.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import gammaln

from crystalmela.plugin_api.pattern import PAPER_GRID, GridSpec, Pattern
from crystalmela.plugin_api.wavelengths import CU_KA1, CU_KA2


class ProfileSettings(BaseModel):
    """How sticks become a profile; every field has the paper's (or our documented) default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shape: Literal["pearson7", "pseudo_voigt", "gaussian", "lorentzian"] = "pearson7"
    fwhm: float = Field(0.1, gt=0, le=5, description="FWHM in degrees 2θ; Caglioti W = fwhm²")
    caglioti_u: float = 0.0
    caglioti_v: float = 0.0
    pearson_m: float = Field(1.5, gt=0.5, le=100, description="Pearson VII exponent")
    eta: float = Field(0.5, ge=0, le=1, description="pseudo-Voigt Lorentzian fraction")
    ka2: bool = Field(False, description="add the Kα2 line")
    ka2_wavelength: float = CU_KA2
    ka2_ratio: float = Field(0.5, ge=0, le=1)
    lorentz_polarisation: bool = True
    window_fwhm: float = Field(25.0, gt=1, description="peak tails are cut this many FWHM out")


def lp_factor(two_theta_deg: np.ndarray) -> np.ndarray:
    """Classical Lorentz–polarisation factor (1 + cos²2θ) / (sin²θ cos θ), unpolarised beam."""
    tt = np.radians(two_theta_deg)
    th = tt / 2.0
    return (1.0 + np.cos(tt) ** 2) / (np.sin(th) ** 2 * np.cos(th))


def _fwhm(settings: ProfileSettings, two_theta_deg: np.ndarray) -> np.ndarray:
    tan = np.tan(np.radians(two_theta_deg) / 2.0)
    h2 = settings.caglioti_u * tan**2 + settings.caglioti_v * tan + settings.fwhm**2
    return np.sqrt(np.maximum(h2, 1e-8))


def _shape(settings: ProfileSettings, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Area-normalised peak shape at offsets x (deg) for widths h (deg)."""
    if settings.shape == "gaussian":
        return _gauss(x, h)
    if settings.shape == "lorentzian":
        return _lorentz(x, h)
    if settings.shape == "pseudo_voigt":
        return settings.eta * _lorentz(x, h) + (1 - settings.eta) * _gauss(x, h)
    m = settings.pearson_m
    k = 2.0 ** (1.0 / m) - 1.0
    norm = 2.0 * np.exp(gammaln(m) - gammaln(m - 0.5)) * np.sqrt(k) / (np.sqrt(np.pi) * h)
    return norm * (1.0 + 4.0 * k * (x / h) ** 2) ** (-m)


def _gauss(x, h):
    return np.sqrt(4 * np.log(2) / np.pi) / h * np.exp(-4 * np.log(2) * (x / h) ** 2)


def _lorentz(x, h):
    return (2 / (np.pi * h)) / (1 + 4 * (x / h) ** 2)


def sticks(d: np.ndarray, intensity: np.ndarray, wavelength: float = CU_KA1, *,
           lorentz_polarisation: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """2θ positions and LP-corrected intensities of the reflections this wavelength reaches."""
    d = np.asarray(d, dtype=float)
    s = wavelength / (2.0 * d)
    ok = s < 1.0
    tt = 2.0 * np.degrees(np.arcsin(s[ok]))
    inten = np.asarray(intensity, dtype=float)[ok]
    if lorentz_polarisation:
        inten = inten * lp_factor(tt)
    return tt, inten


def render(d: np.ndarray, intensity: np.ndarray, grid: GridSpec = PAPER_GRID,
           settings: ProfileSettings = ProfileSettings(), *, normalize: bool = True) -> np.ndarray:
    """Profile on ``grid`` (its wavelength) from d-spacings and m·|F|²; max scaled to grid.normalize_max."""
    d = np.asarray(d, dtype=float)
    return render_many(d, np.asarray(intensity, dtype=float), np.array([0, len(d)]), grid, settings,
                       normalize=normalize)[0].astype(float)


# Sub-bins per grid step in the convolution path: sticks are split linearly between the two nearest
# sub-bins (profile within 0.5 % of the maximum of the direct path; checked in tests).
_SUB = 4


def render_many(d: np.ndarray, intensity: np.ndarray, offsets: np.ndarray,
                grid: GridSpec = PAPER_GRID, settings: ProfileSettings = ProfileSettings(), *,
                normalize: bool = True) -> np.ndarray:
    """Profiles of many reflection lists at once (CSR: row i is offsets[i]:offsets[i+1]).

    With a constant width (Caglioti U = V = 0, the paper's setting) every peak has the same shape, so
    sticks are binned on a 2× finer grid and convolved with one kernel (FFT): cost ∝ points, not
    peaks × window. Angle-dependent widths take the direct path (each peak evaluated in its window).
    Returns float32 (rows, n_points).
    """
    offsets = np.asarray(offsets)
    n_rows = len(offsets) - 1
    n = grid.n_points
    row = np.repeat(np.arange(n_rows), np.diff(offsets))
    lines = [(grid.wavelength, 1.0)]
    if settings.ka2 and settings.ka2_ratio > 0:
        lines.append((grid.wavelength * settings.ka2_wavelength / CU_KA1, settings.ka2_ratio))
    tts, ws, rs = [], [], []
    for wavelength, scale in lines:
        s = wavelength / (2.0 * d)
        ok = s < 1.0
        tt = 2.0 * np.degrees(np.arcsin(s[ok]))
        w = intensity[ok] * scale
        if settings.lorentz_polarisation:
            w = w * lp_factor(tt)
        keep = (tt > grid.two_theta_min - 5) & (tt < grid.two_theta_max + 5) & (w > 0)
        tts.append(tt[keep]), ws.append(w[keep]), rs.append(row[ok][keep])
    tt, w, r = np.concatenate(tts), np.concatenate(ws), np.concatenate(rs)
    constant = settings.caglioti_u == 0 and settings.caglioti_v == 0
    out = (_render_convolved if constant else _render_direct)(tt, w, r, n_rows, grid, settings)
    if normalize:
        top = out.max(axis=1, keepdims=True)
        np.divide(out * grid.normalize_max, top, out=out, where=top > 0)
    return out.astype(np.float32)


def _render_direct(tt, w, r, n_rows, grid, settings) -> np.ndarray:
    n = grid.n_points
    out = np.zeros(n_rows * n)
    if len(tt):
        h = _fwhm(settings, tt)
        half = min(int(np.ceil(settings.window_fwhm * h.max() / grid.step)), n)
        centre = np.rint((tt - grid.two_theta_min) / grid.step).astype(np.int64)
        pos = centre[:, None] + np.arange(-half, half + 1)[None, :]
        vals = w[:, None] * _shape(settings, grid.two_theta_min + pos * grid.step - tt[:, None],
                                   h[:, None])
        valid = (pos >= 0) & (pos < n)
        out += np.bincount((r[:, None] * n + pos)[valid], weights=vals[valid], minlength=n_rows * n)
    return out.reshape(n_rows, n)


def _render_convolved(tt, w, r, n_rows, grid, settings) -> np.ndarray:
    from scipy.signal import fftconvolve

    n = grid.n_points
    fine_step = grid.step / _SUB
    h = float(_fwhm(settings, np.array([45.0]))[0])
    half = int(np.ceil(settings.window_fwhm * h / fine_step))
    pad = half + _SUB
    nf = (n - 1) * _SUB + 1 + 2 * pad
    pos = (tt - grid.two_theta_min) / fine_step + pad
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    ok = (i0 >= 0) & (i0 + 1 < nf)
    i0, frac, w, r = i0[ok], frac[ok], w[ok], r[ok]
    fine = np.bincount(r * nf + i0, weights=w * (1 - frac), minlength=n_rows * nf)
    fine += np.bincount(r * nf + i0 + 1, weights=w * frac, minlength=n_rows * nf)
    fine = fine.reshape(n_rows, nf).astype(np.float32)
    x = np.arange(-half, half + 1) * fine_step
    kernel = _shape(settings, x, np.full_like(x, h))  # same scale as the direct path
    conv = fftconvolve(fine, kernel[None, :].astype(np.float32), mode="same", axes=1)
    out = conv[:, pad:pad + (n - 1) * _SUB + 1:_SUB].astype(float)
    # FFT round-off leaves ±1e-7 of the maximum where there is no peak; left in, threshold-free peak
    # search (paper §3.2) would count that ripple as peaks. Zero it, as the direct path's cut-off does.
    floor = 1e-5 * out.max(axis=1, keepdims=True)
    out[out < floor] = 0.0
    return out


def render_pattern(d, intensity, grid: GridSpec = PAPER_GRID,
                   settings: ProfileSettings = ProfileSettings(), source: str | None = None) -> Pattern:
    """``render`` wrapped as a Pattern on the grid (what ``crystalmela simulate`` writes)."""
    y = render(d, intensity, grid, settings)
    pattern = Pattern(grid.two_theta, y, wavelength=grid.wavelength, source=source,
                      reader="simulated", meta={"profile": settings.model_dump()})
    return pattern
