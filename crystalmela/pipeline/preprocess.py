"""Prediction-time clean-up of a gridded pattern: Kα2 stripping, smoothing, background subtraction.

The steps run on the pattern after it is put on a classifier's grid (constant 2θ step), in the order
Kα2 strip → smooth → background, and the result is rescaled to the grid's maximum. What ran is
written into the pattern's notes and so into the Prediction.

Written with NumPy rather than imported: SNIP is in pybaselines and Savitzky–Golay in scipy.signal,
but both import scipy.signal, which costs ≈ 1.2 s of a 3 s cold start (scipy 1.17 rewrites docstrings
at import). ``tests/test_preprocess.py`` checks each against the library version.
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from crystalmela.plugin_api.pattern import Pattern
from crystalmela.plugin_api.wavelengths import CU_KA1, CU_KA2


class PreprocessSettings(BaseModel):
    """Which clean-up steps run; all off is the identity (the paper's pipeline)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ka2_strip: bool = Field(False, description="remove the Cu Kα2 line (Rachinger), ratio 0.5")
    ka2_ratio: float = Field(0.5, gt=0, lt=1)
    smooth_points: int = Field(0, ge=0, le=101,
                               description="Savitzky–Golay (quadratic) window in points; 0 = off")
    background: bool = Field(False, description="subtract a SNIP background")
    snip_half_window_deg: float = Field(1.5, gt=0, le=20,
                                        description="largest SNIP half window, ° 2θ (≳ 3 peak widths)")

    @property
    def active(self) -> bool:
        return self.ka2_strip or self.smooth_points > 1 or self.background

    def describe(self) -> str:
        steps = []
        if self.ka2_strip:
            steps.append(f"Kα2 stripped (Rachinger, ratio {self.ka2_ratio:g})")
        if self.smooth_points > 1:
            steps.append(f"smoothed (Savitzky–Golay, {self.smooth_points} points)")
        if self.background:
            steps.append(f"SNIP background subtracted (half window {self.snip_half_window_deg:g}°)")
        return "; ".join(steps) or "none"


NONE = PreprocessSettings()


def preprocess(pattern: Pattern, settings: PreprocessSettings = NONE) -> Pattern:
    """The gridded ``pattern`` with the chosen steps applied (a new Pattern; the input is unchanged)."""
    if not settings.active:
        return pattern
    if pattern.grid is None:
        raise ValueError("preprocess() needs a pattern on a grid (Pattern.to_grid)")
    y = apply(pattern.y.astype(float), pattern.grid.step, pattern.x, pattern.wavelength, settings)
    top = y.max()
    y = np.round(y * (pattern.grid.normalize_max / top), 6) if top > 0 else y
    notes = [*pattern.notes, f"preprocessing: {settings.describe()}"]
    return Pattern(pattern.x, y, axis="2theta", wavelength=pattern.wavelength, source=pattern.source,
                   reader=pattern.reader, meta=pattern.meta, notes=notes, grid=pattern.grid)


def apply(y: np.ndarray, step: float, two_theta: np.ndarray, wavelength: float,
          settings: PreprocessSettings) -> np.ndarray:
    """The steps on raw arrays (a constant-step 2θ profile); used by ``preprocess`` and training."""
    if settings.ka2_strip:
        y = strip_ka2(two_theta, y, wavelength, settings.ka2_ratio)
    if settings.smooth_points > 1:
        # a quadratic fit overshoots below zero at a step (the zero padding of a short scan, a
        # detector gap); intensity cannot be negative, and the Pattern it becomes refuses it
        y = np.clip(savgol(y, settings.smooth_points), 0, None)
    if settings.background:
        y = np.clip(y - snip(y, max(1, int(round(settings.snip_half_window_deg / step)))), 0, None)
    return y


def snip(y: np.ndarray, max_half_window: int) -> np.ndarray:
    """SNIP background (Ryan et al. 1988): clip each point to the mean of its neighbours ±p for
    p = 1 … max_half_window; edges padded with the end values. Equals
    ``pybaselines.smooth.snip(y, max_half_window, pad_kwargs={"mode": "edge"})``."""
    m = int(max_half_window)
    b = np.pad(np.asarray(y, float), m, mode="edge")
    n = b.size
    for p in range(1, m + 1):
        mean = 0.5 * (b[:n - 2 * p] + b[2 * p:])   # neighbours ±p of b[p:n-p], the pad included
        core = b[p:n - p]
        np.minimum(core, mean, out=core)
    return b[m:n - m].copy()


def savgol(y: np.ndarray, window: int) -> np.ndarray:
    """Quadratic Savitzky–Golay smoothing over ``window`` points (made odd), edges padded with the
    end values: ``scipy.signal.savgol_filter(y, window, 2, mode="nearest")``."""
    h = int(window) // 2
    if h < 1:
        return np.asarray(y, float)
    t = np.arange(-h, h + 1, dtype=float)
    coeffs = np.linalg.pinv(np.vander(t, 3, increasing=True))[0]
    return np.convolve(np.pad(np.asarray(y, float), h, mode="edge"), coeffs[::-1], mode="valid")


def strip_ka2(two_theta: np.ndarray, y: np.ndarray, wavelength: float = CU_KA1,
              ratio: float = 0.5, iterations: int = 30) -> np.ndarray:
    """Rachinger Kα2 stripping: I₁(2θ) = I(2θ) − R·I₁(2θ − Δ), Δ the Kα1→Kα2 shift at that angle.

    Solved by fixed-point iteration (the error shrinks by R each pass, 0.5³⁰ ≈ 1e-9), which is
    vectorised where the textbook recurrence walks point by point."""
    two_theta = np.asarray(two_theta, float)
    y = np.asarray(y, float)
    theta = np.radians(two_theta) / 2.0
    s2 = np.clip(np.sin(theta) * CU_KA2 / CU_KA1, None, 1.0)
    src = two_theta - (2.0 * np.degrees(np.arcsin(s2)) - two_theta)   # where Kα1 sits for this Kα2
    i1 = y.copy()
    for _ in range(iterations):
        i1 = y - ratio * np.interp(src, two_theta, i1, left=0.0, right=0.0)
    return np.clip(i1, 0, None)


def parse(spec: str | None) -> PreprocessSettings:
    """``"none"``, or comma-separated steps: ``ka2``, ``smooth[=POINTS]``, ``background[=HALF_WINDOW_DEG]``
    (e.g. ``"ka2,smooth=9,background=1.5"``), as the CLI's ``--preprocess`` takes them."""
    from crystalmela.plugin_api.errors import CrystalmelaError, settings_problem
    if spec is None or spec.strip().lower() in ("", "none"):
        return NONE
    fields: dict = {}
    for item in spec.split(","):
        name, _, value = item.strip().partition("=")
        try:
            if name == "ka2":
                fields["ka2_strip"] = True
                if value:
                    fields["ka2_ratio"] = float(value)
            elif name == "smooth":
                fields["smooth_points"] = int(value) if value else 7
            elif name == "background":
                fields["background"] = True
                if value:
                    fields["snip_half_window_deg"] = float(value)
            else:
                raise CrystalmelaError(f"preprocessing step {name!r}: expected ka2, smooth[=POINTS] or "
                                       "background[=HALF_WINDOW_DEG], comma-separated, or none")
            return_value = PreprocessSettings(**fields)
        except ValueError as exc:
            raise CrystalmelaError(f"preprocessing {item.strip()!r}: {settings_problem(exc)}") from None
    return return_value
