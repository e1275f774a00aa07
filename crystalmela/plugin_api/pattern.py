"""Pattern: a validated powder pattern, and the grid a classifier asks patterns to be put on.

Data flows one way: a reader builds a ``Pattern`` from a file; ``Pattern.to_grid(spec)`` converts it to
the wavelength, range, step and scale a classifier declares in its ``GridSpec``.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crystalmela.plugin_api.errors import PatternError
from crystalmela.plugin_api.wavelengths import CU_KA1, check_wavelength

Axis = Literal["2theta", "d", "q"]
NegativePolicy = Literal["error", "offset", "clip"]


class GridSpec(BaseModel):
    """The input grid a classifier was trained on; stated by the classifier plugin, never assumed.

    The defaults are the paper's (§2): Cu Kα1, 2θ 0–90° in 0.02° steps (4501 points), maximum 1000.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    wavelength: float = Field(CU_KA1, gt=0, description="wavelength (Å) the 2θ axis refers to")
    two_theta_min: float = Field(0.0, ge=0, lt=180)
    two_theta_max: float = Field(90.0, gt=0, lt=180)
    step: float = Field(0.02, gt=0, description="2θ step (degrees)")
    normalize_max: float = Field(1000.0, gt=0, description="the largest intensity after scaling")

    @model_validator(mode="after")
    def _check(self) -> "GridSpec":
        if self.two_theta_max <= self.two_theta_min:
            raise ValueError("two_theta_max must exceed two_theta_min")
        n = (self.two_theta_max - self.two_theta_min) / self.step
        if abs(n - round(n)) > 1e-6:
            raise ValueError("the 2θ range must be a whole number of steps")
        return self

    @property
    def n_points(self) -> int:
        return int(round((self.two_theta_max - self.two_theta_min) / self.step)) + 1

    @property
    def two_theta(self) -> np.ndarray:
        return np.linspace(self.two_theta_min, self.two_theta_max, self.n_points)


PAPER_GRID = GridSpec()


def two_theta_to_d(two_theta: np.ndarray, wavelength: float) -> np.ndarray:
    """Bragg's law, d = λ / (2 sin θ)."""
    return wavelength / (2.0 * np.sin(np.radians(np.asarray(two_theta, dtype=float)) / 2.0))


def d_to_two_theta(d: np.ndarray, wavelength: float) -> np.ndarray:
    """Inverse Bragg's law; NaN where the reflection is beyond reach of this wavelength (λ/2d > 1)."""
    s = wavelength / (2.0 * np.asarray(d, dtype=float))
    with np.errstate(invalid="ignore"):
        return np.where(s <= 1.0, 2.0 * np.degrees(np.arcsin(np.minimum(s, 1.0))), np.nan)


class Pattern:
    """A powder pattern, validated on creation.

    ``x`` is 2θ (degrees), d (Å) or Q = 4π sin θ / λ (Å⁻¹) as ``axis`` says. On creation the points are
    sorted by ``x`` and duplicate ``x`` values merged (mean intensity); lengths must match and every value
    must be finite. Negative intensities (e.g. background-subtracted data) are refused, or shifted up by
    the minimum (``negative="offset"``) or clipped to zero (``negative="clip"``); either is recorded in
    ``notes`` so a result can say what was done to the data, and ``negative_fraction`` and
    ``raw_max`` keep what the counts were before (the data-quality gate reads them).
    """

    __slots__ = ("x", "y", "sigma", "axis", "wavelength", "source", "reader", "meta", "notes", "grid",
                 "negative_fraction", "raw_max")

    def __init__(self, x, y, *, axis: Axis = "2theta", wavelength: float | None = None, sigma=None,
                 source: str | None = None, reader: str | None = None, meta: dict | None = None,
                 negative: NegativePolicy = "error", notes: list[str] | None = None,
                 grid: GridSpec | None = None):
        if axis not in ("2theta", "d", "q"):
            raise PatternError(f"axis must be '2theta', 'd' or 'q', not {axis!r}")
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        s = None if sigma is None else np.asarray(sigma, dtype=float)
        if x.ndim != 1 or y.ndim != 1:
            raise PatternError("x and intensity must be one-dimensional arrays")
        if x.shape != y.shape or (s is not None and s.shape != x.shape):
            raise PatternError(f"x has {x.size} values but intensity has {y.size}"
                               + ("" if s is None else f" and sigma has {s.size}"))
        if x.size < 2:
            raise PatternError(f"a pattern needs at least 2 points, got {x.size}")
        for name, arr in (("x", x), ("intensity", y), ("sigma", s)):
            if arr is not None and not np.all(np.isfinite(arr)):
                i = int(np.flatnonzero(~np.isfinite(arr))[0])
                raise PatternError(f"{name} value at point {i + 1} is {float(arr[i])!r}, not a finite number")
        if axis == "2theta" and (x.min() < 0 or x.max() >= 180):
            raise PatternError(f"2θ must lie in 0–180°, got {x.min():g}–{x.max():g}")
        if axis in ("d", "q") and x.min() <= 0:
            raise PatternError(f"{axis} values must be positive, got minimum {x.min():g}")
        if wavelength is not None:
            wavelength = check_wavelength(wavelength)
        notes = list(notes or [])

        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        s = None if s is None else s[order]
        dup = np.diff(x) == 0
        if dup.any():
            ux, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
            y = np.bincount(inverse, weights=y) / counts
            if s is not None:  # errors of a mean of n points
                s = np.sqrt(np.bincount(inverse, weights=s ** 2)) / counts
            notes.append(f"merged {int(dup.sum())} duplicate x values (mean intensity)")
            x = ux
            if x.size < 2:
                raise PatternError("a pattern needs at least 2 distinct x values")

        ymin = float(y.min())
        self.negative_fraction = float((y < 0).mean())
        self.raw_max = float(y.max())
        if ymin < 0:
            if negative == "offset":
                y = y - ymin
                notes.append(f"intensities shifted by {-ymin:g} to make them non-negative")
            elif negative == "clip":
                notes.append(f"{int((y < 0).sum())} negative intensities clipped to 0")
                y = np.clip(y, 0, None)
            else:
                i = int(np.argmin(y))
                raise PatternError(f"intensity at x = {x[i]:g} is negative ({ymin:g}); "
                                   "use negative='offset' or 'clip' for background-subtracted data")

        self.x, self.y, self.sigma = x, y, s
        self.axis: Axis = axis
        self.wavelength = wavelength
        self.source, self.reader = source, reader
        self.meta = dict(meta or {})
        self.notes = notes
        self.grid = grid

    def __len__(self) -> int:
        return int(self.x.size)

    def __repr__(self) -> str:
        wl = f", λ={self.wavelength:g} Å" if self.wavelength else ""
        return (f"Pattern({len(self)} points, {self.axis} {self.x[0]:g}–{self.x[-1]:g}{wl}, "
                f"source={self.source!r}, reader={self.reader!r})")

    def d_spacing(self, wavelength: float | None = None) -> np.ndarray:
        """d (Å) of every point; a 2θ axis needs a wavelength (argument or the pattern's own)."""
        if self.axis == "d":
            return self.x.copy()
        if self.axis == "q":
            return 2.0 * np.pi / self.x
        wl = wavelength or self.wavelength
        if wl is None:
            raise PatternError("this 2θ pattern has no wavelength; give one to convert it to d-spacing")
        with np.errstate(divide="ignore"):
            return two_theta_to_d(self.x, wl)

    def to_grid(self, grid: GridSpec = PAPER_GRID, wavelength: float | None = None) -> "Pattern":
        """This pattern on ``grid``: converted to the grid's wavelength through d, cut or zero-padded to
        its 2θ range, resampled to its step and scaled to its maximum.

        ``wavelength`` overrides the pattern's own; a 2θ pattern with neither is taken to be measured at
        the grid's wavelength, and the returned pattern's ``notes`` say so.

        Resampling averages the measured profile over each grid step (the difference of its running
        integral), so data finer than the grid keep their peak areas instead of being point-sampled
        (plain interpolation drops samples and can miss a sharp maximum). Data coarser than the grid
        are linearly interpolated.
        """
        notes = list(self.notes)
        if self.axis == "2theta":
            wl = wavelength or self.wavelength
            if wl is None:
                wl = grid.wavelength
                notes.append(f"wavelength not given: assumed {grid.wavelength:g} Å (the models' grid)")
            wl = check_wavelength(wl)
            if abs(wl - grid.wavelength) < 1e-9:
                tt = self.x
            else:
                with np.errstate(divide="ignore"):
                    tt = d_to_two_theta(two_theta_to_d(self.x, wl), grid.wavelength)
                notes.append(f"2θ converted from λ = {wl:g} Å to {grid.wavelength:g} Å through d-spacing")
        else:
            tt = d_to_two_theta(self.d_spacing(), grid.wavelength)
            notes.append(f"{self.axis} axis converted to 2θ at {grid.wavelength:g} Å")
        ok = np.isfinite(tt) & (tt > 0)
        tt, yy = tt[ok], self.y[ok]
        if tt.size < 2:
            raise PatternError("no point of this pattern falls within reach of the grid's wavelength")
        order = np.argsort(tt)
        tt, yy = tt[order], yy[order]
        top_in = float(yy.max())
        if top_in > 1e150 or 0 < top_in < 1e-150:
            # the running integral below would overflow (or the final scaling underflow); scaling is
            # linear and the grid is renormalised anyway, so only such files are touched
            yy = yy / top_in

        lo, hi = grid.two_theta_min, grid.two_theta_max
        if tt[0] >= hi or tt[-1] <= lo:
            raise PatternError(f"the pattern spans 2θ {tt[0]:.2f}–{tt[-1]:.2f}° at {grid.wavelength:g} Å, "
                               f"outside the models' range {lo:g}–{hi:g}°")
        if tt[-1] > hi + grid.step:
            notes.append(f"cut at 2θ = {hi:g}° (data reached {tt[-1]:.2f}°)")
        if tt[0] > lo + grid.step or tt[-1] < hi - grid.step:
            notes.append(f"data cover 2θ {max(tt[0], lo):.2f}–{min(tt[-1], hi):.2f}°; "
                         f"rest of {lo:g}–{hi:g}° zero-padded")

        gx = grid.two_theta
        h = grid.step
        # Running integral of the piecewise-linear profile; its difference over each step is the mean.
        cum = np.concatenate(([0.0], np.cumsum(0.5 * (yy[1:] + yy[:-1]) * np.diff(tt))))
        edges = np.concatenate((gx - h / 2, [gx[-1] + h / 2]))
        ce = np.interp(edges, tt, cum, left=0.0, right=cum[-1])
        gy = np.diff(ce) / h
        gy[gy < 0] = 0.0  # rounding only
        top = float(gy.max())
        if top <= 0:
            raise PatternError(f"the pattern has no intensity within 2θ {lo:g}–{hi:g}° "
                               f"at {grid.wavelength:g} Å")
        # Rounding removes the ~1e-13 ripple the running-integral difference leaves on flat stretches;
        # peak finders without a height threshold (paper §3.2) would count every ripple as a peak.
        gy = np.round(gy * (grid.normalize_max / top), 6)
        return Pattern(gx, gy, axis="2theta", wavelength=grid.wavelength, source=self.source,
                       reader=self.reader, meta=self.meta, notes=notes, grid=grid)


__all__ = ["PAPER_GRID", "GridSpec", "Pattern", "d_to_two_theta", "two_theta_to_d"]
