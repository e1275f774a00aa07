"""CIF (or Crystal) → simulated powder pattern: the paper's §2 recipe as one call.

``simulate`` = read (gemmi) → reflections (``diffraction``) → profile (``profiles``) on a GridSpec.
The reflection range follows the grid: every reflection this wavelength puts below 2θ_max is kept.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crystalmela.simulation.diffraction import Reflections, reflections
from crystalmela.plugin_api.pattern import PAPER_GRID, GridSpec, Pattern
from crystalmela.simulation.profiles import ProfileSettings, render_pattern, sticks
from crystalmela.simulation.structure import Crystal, read_cif


def d_min_for(grid: GridSpec, profile: ProfileSettings = ProfileSettings()) -> float:
    """Smallest d that can reach the grid (Kα2 included), with a margin for peak tails."""
    wl = grid.wavelength
    if profile.ka2:
        wl = max(wl, grid.wavelength * profile.ka2_wavelength / 1.54056)
    top = min(grid.two_theta_max + 2.0, 179.0)
    return wl / (2.0 * np.sin(np.radians(top) / 2.0))


def load_crystal(source: str | Path | Crystal, block: str | None = None) -> Crystal:
    if isinstance(source, Crystal):
        return source
    return read_cif(source, block=block)[0]


def simulate_reflections(source: str | Path | Crystal, grid: GridSpec = PAPER_GRID, *,
                         profile: ProfileSettings = ProfileSettings(), adp: bool = True,
                         block: str | None = None) -> Reflections:
    return reflections(load_crystal(source, block), d_min_for(grid, profile), adp=adp)


def simulate(source: str | Path | Crystal, grid: GridSpec = PAPER_GRID, *,
             profile: ProfileSettings = ProfileSettings(), adp: bool = True,
             block: str | None = None) -> Pattern:
    """Simulated pattern of a structure on ``grid`` (default: the paper's Cu Kα1 0–90°/0.02° grid)."""
    crystal = load_crystal(source, block)
    refl = reflections(crystal, d_min_for(grid, profile), adp=adp)
    pattern = render_pattern(refl.d, refl.intensity, grid, profile, source=crystal.source or None)
    pattern.meta.update({
        "structure": crystal.name,
        "space_group_number": crystal.spacegroup_number,
        "crystal_system": crystal.crystal_system,
        "formula": crystal.formula_string(),
    })
    return pattern


def stick_table(refl: Reflections, wavelength: float, two_theta_max: float = 180.0):
    """(2θ, relative intensity ×100, d, hkl, multiplicity) rows for reflections below two_theta_max."""
    tt, inten = sticks(refl.d, refl.intensity, wavelength)
    n = len(tt)  # sticks keeps reflections in order, dropping only those beyond reach at the end
    keep = tt <= two_theta_max
    scale = 100.0 / inten[keep].max() if keep.any() and inten[keep].max() > 0 else 1.0
    rows = []
    for i in np.flatnonzero(keep):
        h, k, l = (int(v) for v in refl.hkl[:n][i])
        rows.append((float(tt[i]), float(inten[i] * scale), float(refl.d[:n][i]), (h, k, l),
                     int(refl.multiplicity[:n][i])))
    return rows
