"""The real-structure hold-out: real CIFs (never trained on) simulated and scored by the installed
models, clean and under a fixed lab-condition model (``crystalmela evaluate --cifs DIR [--lab]``).

The lab model is fixed, not drawn from the training augmentation's ranges, and rendered by another
code path (Pearson VII peaks through ``profiles.render``): Cu Kα1+Kα2, FWHM 0.12°, a smooth background
(quadratic + exponential low-angle rise, 5–15 % of the strongest peak), Poisson counting noise at
5,000 counts for the strongest peak, and a zero shift of ±0.03°, drawn from one generator seeded 0
in file-name order, so every run renders the same patterns.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from crystalmela.evaluation.metrics import rate_interval
from crystalmela.evaluation.patterns import score
from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.plugin_api.pattern import PAPER_GRID, Pattern
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

__all__ = ["CONDITIONS", "cif_patterns", "evaluate_cifs", "lab_pattern"]

CONDITIONS = ("clean", "lab")


def lab_pattern(crystal, rng: np.random.Generator) -> Pattern:
    """``crystal``'s pattern on the paper grid under the fixed lab-condition model (module docstring)."""
    from crystalmela.simulation.diffraction import reflections
    from crystalmela.simulation.profiles import ProfileSettings, render
    from crystalmela.simulation.simulate import d_min_for
    prof = ProfileSettings(fwhm=0.12, ka2=True)
    refl = reflections(crystal, d_min_for(PAPER_GRID, prof))
    shift = rng.uniform(-0.03, 0.03)
    y = render(refl.d, refl.intensity, PAPER_GRID, prof)          # max 1000
    x = PAPER_GRID.two_theta
    y = np.interp(x, x + shift, y)
    t = x / 90.0
    bg = (rng.uniform(0.05, 0.15) * 1000) * (0.6 + 0.4 * (1 - t) ** 2 + np.exp(-x / rng.uniform(3, 8)))
    counts = rng.poisson((y + bg) * 5.0) / 5.0
    return Pattern(x, counts, wavelength=PAPER_GRID.wavelength, reader="simulated-lab")


def cif_patterns(dirs: Iterable[str | Path], lab: bool) -> Iterator[tuple[Path, object, Pattern]]:
    """(path, crystal, pattern) of each readable CIF under ``dirs`` in name order: simulated clean,
    or under ``lab_pattern``. A CIF that cannot be read, or whose clean pattern has nothing on the
    paper grid, is skipped before any lab draw, so the lab renderings of the others never depend on
    which files were skipped."""
    from crystalmela.simulation.simulate import simulate
    from crystalmela.simulation.structure import StructureError, read_cif
    rng = np.random.default_rng(0)
    for path in sorted(p for d in dirs for p in Path(d).rglob("*.cif")):
        try:
            crystal = read_cif(path)[0]
            pattern = simulate(crystal)
            pattern.to_grid(PAPER_GRID)
        except (StructureError, CrystalmelaError):
            continue
        yield path, crystal, (lab_pattern(crystal, rng) if lab else pattern)


def evaluate_cifs(dirs: Iterable[str | Path], predictor, *, lab: bool = False) -> dict:
    """Metrics of ``predictor`` (a :class:`crystalmela.Predictor`) on the CIFs under ``dirs``, per
    condition (``clean``, and ``lab`` with ``lab``), each as ``evaluate_patterns`` reports, with the
    ensemble's top-1 and top-2 95 % Wilson intervals (what the hold-out's size alone leaves open)."""
    dirs = [Path(d) for d in dirs]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise CrystalmelaError(f"--cifs: not a folder: {', '.join(missing)}")
    report = {"mode": "cifs", "cifs": [str(d) for d in dirs], "conditions": {}}
    for cond in CONDITIONS[:2 if lab else 1]:
        items = ((str(p), CRYSTAL_SYSTEMS.index(c.crystal_system), pat)
                 for p, c, pat in cif_patterns(dirs, lab=cond == "lab"))
        try:
            res = score(predictor, items)
        except CrystalmelaError:
            raise CrystalmelaError(f"--cifs {', '.join(map(str, dirs))}: no readable CIF with reflections "
                                   "below 90°") from None
        for key in ("accuracy", "top2_accuracy"):
            res["ensemble"][key + "_interval"] = list(rate_interval(round(res["ensemble"][key] * res["n"]), res["n"]))
        report["conditions"][cond] = res
    return report
