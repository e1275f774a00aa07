"""The peak list of a measured scan: what the peak search finds and what indexers read.

``find_peaks(pattern)`` runs the core's peak search (``crystalmela.peaks``) on the data as measured:
the pattern's own wavelength, step and range, not a model grid. Plugins reach it through here.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class PeakSearchSettings(BaseModel):
    """How peaks are found and fitted; the defaults suit laboratory and synchrotron scans."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    background_window_deg: float = Field(1.5, gt=0, le=20,
                                         description="SNIP background: largest half window, ° 2θ (≳ 3 peak widths)")
    min_sigma: float = Field(4.0, gt=0, description="a peak's fitted height above background, in noise σ")
    ka2: Literal["auto", "yes", "no"] = Field(
        "auto", description="fit Kα1/Kα2 doublets: auto = when the wavelength is a laboratory anode's Kα1")
    ka2_ratio: float = Field(0.5, gt=0, lt=1, description="I(Kα2)/I(Kα1)")
    max_peaks: int = Field(200, ge=1, description="the strongest this many are kept")
    time_budget_s: float = Field(5.0, gt=0, description="profile fitting stops after this; the rest are listed "
                                                         "unfitted, and the notes say so")


class Peak(BaseModel):
    """One reflection (the Kα1 line of a doublet), from a pseudo-Voigt fit of its cluster."""

    model_config = ConfigDict(frozen=True)

    two_theta: float = Field(description="° 2θ at the pattern's wavelength (Kα1)")
    esd_two_theta: float = Field(description="standard uncertainty of the position, ° (from the fit's covariance)")
    d: float = Field(description="Å")
    height: float = Field(description="above the background, in the file's intensity units")
    area: float = Field(description="integrated intensity above the background, units × °")
    fwhm: float = Field(description="° 2θ")
    eta: float = Field(description="pseudo-Voigt Lorentzian fraction")
    snr: float = Field(description="height over the noise σ")


class PeakList(BaseModel):
    """Peaks of one pattern, in 2θ order, with what the search assumed."""

    source: str | None = None
    wavelength: float = Field(description="Å, the Kα1 line the positions refer to")
    wavelength_source: str = "file"
    ka2: bool = Field(description="peaks were fitted as Kα1/Kα2 doublets (each reported once)")
    noise_sigma: float
    peaks: list[Peak] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def __len__(self) -> int:
        return len(self.peaks)

    @property
    def two_theta(self) -> np.ndarray:
        return np.array([p.two_theta for p in self.peaks])

    @property
    def d(self) -> np.ndarray:
        return np.array([p.d for p in self.peaks])

    def to_json(self) -> dict:
        return self.model_dump()

    def to_text(self) -> str:
        """A plain peak list (2θ, its esd, d, height, area, FWHM) with a commented header."""
        head = [f"# peaks of {self.source or 'a pattern'} (crystalmela peaks)",
                f"# wavelength {self.wavelength:g} Å ({self.wavelength_source}); Kα2 "
                + ("fitted as doublets" if self.ka2 else "not fitted"),
                *(f"# note: {n}" for n in self.notes),
                "# 2theta      esd       d(A)        height        area      fwhm"]
        rows = [f"{p.two_theta:9.4f} {p.esd_two_theta:8.4f} {p.d:10.5f} {p.height:13.2f} {p.area:11.3f} {p.fwhm:9.4f}"
                for p in self.peaks]
        return "\n".join(head + rows) + "\n"


def find_peaks(pattern, settings: PeakSearchSettings | None = None, wavelength: float | None = None) -> PeakList:
    """The peaks of ``pattern`` (a :class:`crystalmela.Pattern` as read), found and fitted on the data
    as measured; ``wavelength`` overrides the pattern's own (Å)."""
    from crystalmela.peaks.search import search
    return search(pattern, settings or PeakSearchSettings(), wavelength)


def d_of(two_theta: float, wavelength: float) -> float:
    return wavelength / (2.0 * math.sin(math.radians(two_theta) / 2.0))


__all__ = ["Peak", "PeakList", "PeakSearchSettings", "find_peaks"]
