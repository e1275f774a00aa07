"""The data-quality gate: is there a powder pattern in this file that the models can answer for?

It runs on the pattern as read, before any model, and measures what a crystallographer looks at first:
how many points, the step against the models' grid, the 2θ range the models will see, whether any
peak stands above the counting noise, the sign of the counts and one-point spikes. Each measure either
refuses the pattern (:class:`QualityError`, one line: what failed and its number) or lets it through
marked ``unsure`` with the reason. Junk (a handful of points, noise, a ramp, 2θ in radians, all counts
negative, a scan cut to a few degrees) used to get a confident answer from the models, which cannot
tell junk from a pattern: they were trained on patterns only.

The thresholds are :class:`QualitySettings` with the defaults documented in docs/quality.md; they
were set from synthetic patterns (simulated with the lab-like augmentation) and generated junk
(``benchmarks/fuzz_readers.py``), never from the hold-outs. Written with NumPy: the measures are a
few array passes, and ``scipy.signal`` would add ≈ 1.2 s to every start (see ``preprocess``).
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from crystalmela.peaks.search import robust_noise
from crystalmela.plugin_api.errors import PatternError
from crystalmela.plugin_api.pattern import PAPER_GRID, GridSpec, Pattern, d_to_two_theta, two_theta_to_d

__all__ = ["Quality", "QualityError", "QualitySettings", "assess"]



class QualityError(PatternError):
    """The pattern fails the data-quality gate: no model is asked."""


class QualitySettings(BaseModel):
    """Thresholds of the gate; ``refuse_*`` stop the prediction, ``unsure_*`` flag it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    refuse_points_below: int = Field(50, ge=2, description="fewer measured points than this: refused")
    refuse_step_above_deg: float = Field(0.5, gt=0, description="median 2θ step coarser than this (°): refused")
    unsure_step_above_deg: float = Field(0.1, gt=0, description="median 2θ step coarser than this (°): unsure")
    refuse_coverage_below_deg: float = Field(10.0, ge=0, description="2θ span within the models' range (°) below this: refused")
    unsure_coverage_below_deg: float = Field(30.0, ge=0, description="2θ span within the models' range (°) below this: unsure")
    peak_sigma: float = Field(6.0, gt=0, description="a peak stands this many noise σ above the background")
    unsure_peaks_below: int = Field(4, ge=1, description="fewer peaks above noise than this: unsure (none: refused)")
    unsure_negative_fraction: float = Field(0.5, ge=0, le=1,
                                            description="more of the counts negative than this (shifted up): unsure")
    spike_share: float = Field(0.1, gt=0, le=1,
                               description="a one-point spike this tall against the strongest peak: unsure")


DEFAULT = QualitySettings()


class Quality(BaseModel):
    """What the gate measured, and why the answer is unsure (empty: nothing doubtful)."""

    points: int
    median_step_deg: float | None = None
    coverage_deg: tuple[float, float] | None = None
    noise_sigma: float | None = None
    snr: float | None = Field(None, description="strongest peak above background, in noise σ")
    peaks_above_noise: int = 0
    spikes: list[float] = Field(default_factory=list, description="2θ of one-point spikes")
    unsure: list[str] = Field(default_factory=list)

    def to_json(self) -> dict:
        """The measures (the reasons go to the Prediction's ``unsure_reasons``)."""
        return self.model_dump(exclude={"unsure"})


def _grid_two_theta(pattern: Pattern, grid: GridSpec, wavelength: float | None) -> np.ndarray:
    """The points' 2θ at the grid's wavelength, as ``to_grid`` converts them (NaN out of reach)."""
    if pattern.axis == "2theta":
        wl = wavelength or pattern.wavelength or grid.wavelength
        if abs(wl - grid.wavelength) < 1e-9:
            return pattern.x
        with np.errstate(divide="ignore", invalid="ignore"):
            return d_to_two_theta(two_theta_to_d(pattern.x, wl), grid.wavelength)
    return d_to_two_theta(pattern.d_spacing(), grid.wavelength)


def _background(tt: np.ndarray, y: np.ndarray, width: float = 0.5) -> np.ndarray:
    """A slowly varying background: the median of each ``width``° bin, the lowest of it and its two
    neighbours (a bin inside a cluster of peaks reads high), interpolated back to the points."""
    edges = np.arange(tt[0], tt[-1] + width, width)
    which = np.clip(np.searchsorted(edges, tt, side="right") - 1, 0, len(edges) - 1)
    centres, levels = [], []
    for b in np.unique(which):
        sel = which == b
        centres.append(tt[sel].mean())
        levels.append(np.median(y[sel]))
    levels = np.asarray(levels)
    if levels.size >= 3:
        levels = np.minimum(levels, np.minimum(np.r_[levels[0], levels[:-1]], np.r_[levels[1:], levels[-1]]))
    return np.interp(tt, centres, levels)


def _local_maxima(y: np.ndarray, half: int) -> np.ndarray:
    """Indices (ends excluded) of points that are the highest within ±``half`` points."""
    n = y.size
    if n < 2 * half + 1:
        return np.empty(0, int)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(y, half, mode="edge"), 2 * half + 1)
    top = windows.max(axis=1)
    idx = np.flatnonzero(y >= top)
    idx = idx[(idx > 0) & (idx < n - 1)]
    if idx.size:      # a flat top counts once
        idx = idx[np.r_[True, np.diff(idx) > 1]]
    return idx


def assess(pattern: Pattern, grid: GridSpec = PAPER_GRID, wavelength: float | None = None,
           settings: QualitySettings = DEFAULT) -> Quality:
    """Measure ``pattern`` (as read) against ``grid`` (the models'); raise :class:`QualityError` if
    it fails a ``refuse_*`` threshold, else return the measures with any ``unsure`` reasons."""
    s = settings
    n = len(pattern)
    if n < s.refuse_points_below:
        raise QualityError(f"only {n} points: a powder scan has hundreds to thousands "
                           f"(the gate needs at least {s.refuse_points_below})")
    unsure: list[str] = []
    if pattern.raw_max is not None and pattern.raw_max <= 0:
        raise QualityError(f"every intensity is zero or negative (largest {pattern.raw_max:g}): "
                           "counts cannot be, so this is not a measured pattern")
    if pattern.negative_fraction > s.unsure_negative_fraction:
        unsure.append(f"{pattern.negative_fraction:.0%} of the intensities were negative and shifted up: "
                      "background-subtracted data or a damaged file")

    with np.errstate(invalid="ignore"):
        tt_all = _grid_two_theta(pattern, grid, wavelength)
    ok = np.isfinite(tt_all)
    tt, y = tt_all[ok], pattern.y[ok]
    order = np.argsort(tt)
    tt, y = tt[order], y[order]
    radians = pattern.axis == "2theta" and pattern.x.max() <= np.pi
    hint = " (is 2θ given in radians?)" if radians else ""

    step = float(np.median(np.diff(tt))) if tt.size > 1 else None
    inside = (tt >= grid.two_theta_min) & (tt <= grid.two_theta_max)
    if inside.sum() < 2:
        raise QualityError(f"the pattern spans 2θ {tt[0]:.2f}–{tt[-1]:.2f}° at {grid.wavelength:g} Å, outside the "
                           f"models' range {grid.two_theta_min:g}–{grid.two_theta_max:g}°{hint}")
    lo, hi = float(tt[inside][0]), float(tt[inside][-1])
    span = hi - lo
    if span < s.refuse_coverage_below_deg:
        raise QualityError(f"the data cover {span:.2f}° of 2θ within the models' {grid.two_theta_min:g}–"
                           f"{grid.two_theta_max:g}° (the gate needs {s.refuse_coverage_below_deg:g}°){hint}")
    if step is not None and step > s.refuse_step_above_deg:
        raise QualityError(f"median 2θ step {step:.3g}° is coarser than {s.refuse_step_above_deg:g}°: "
                           "peaks are not resolved")
    if span < s.unsure_coverage_below_deg:
        unsure.append(f"the data cover only {lo:.1f}–{hi:.1f}° 2θ ({span:.1f}°) of the models' "
                      f"{grid.two_theta_min:g}–{grid.two_theta_max:g}°")
    if step is not None and step > s.unsure_step_above_deg:
        unsure.append(f"median 2θ step {step:.3g}° is coarse against the models' {grid.step:g}°: "
                      "peak shapes and close pairs are lost")

    tt, y = tt[inside], y[inside]
    bg = _background(tt, y)
    sigma = robust_noise(y)
    # noise-free (simulated) data have only rounding ripples; the floor is read from the top of the
    # profile without its highest points, so one spike cannot set it
    sigma = max(sigma, 1e-4 * float(np.percentile(y - bg, 99.5)), 1e-12)
    half = max(1, int(round(0.05 / step))) if step else 1

    # a one-point spike (a detector glitch, a flipped bit): far above both neighbours, which a peak
    # sampled at a few points per width never is. Spikes are flattened before peaks are counted.
    inner = np.arange(1, y.size - 1)
    nb = np.maximum(y[inner - 1], y[inner + 1])
    rise = y[inner] - nb
    lone = inner[(rise > 0.8 * (y[inner] - bg[inner])) & (rise > s.peak_sigma * sigma)]
    flat = y.copy()
    flat[lone] = nb[lone - 1]
    above = flat - bg
    maxima = _local_maxima(flat, half)
    peaks = maxima[above[maxima] > s.peak_sigma * sigma]
    strongest = float(above[peaks].max()) if peaks.size else 0.0
    if lone.size:
        tall = lone[(y[lone] - bg[lone]) >= s.spike_share * max(strongest, 1e-12)]
        if tall.size:
            ratio = float((y[tall] - bg[tall]).max()) / max(strongest, 1e-12)
            unsure.append(f"{tall.size} one-point spike{'s' if tall.size > 1 else ''} at 2θ "
                          + ", ".join(f"{tt[i]:.2f}°" for i in tall[:3]) + (" …" if tall.size > 3 else "")
                          + (f" (the tallest {ratio:.3g}× the strongest peak)" if strongest else "")
                          + ": a detector glitch or a damaged file")
    if peaks.size == 0:
        best = float(above[maxima].max()) / sigma if maxima.size else 0.0
        raise QualityError("no peak stands above the noise (" + (
            f"the highest local maximum is {best:.1f} σ above the background" if maxima.size
            else "the profile has no local maximum") + f"; a peak needs {s.peak_sigma:g} σ){hint}")
    snr = strongest / sigma
    if peaks.size < s.unsure_peaks_below:
        unsure.append(f"only {peaks.size} peak{'s' if peaks.size > 1 else ''} above the noise: "
                      "too few to tell a crystal system")
    spikes = lone
    return Quality(points=n, median_step_deg=step, coverage_deg=(lo, hi), noise_sigma=sigma, snr=snr,
                   peaks_above_noise=int(peaks.size), spikes=[float(tt[i]) for i in spikes], unsure=unsure)
