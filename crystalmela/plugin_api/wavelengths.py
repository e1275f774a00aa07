"""X-ray tube anodes and their Kα1 wavelengths (Å), the values diffractometer software uses.

Cu Kα1 is 1.54056 Å as in the paper; the others follow Hölzer et al. (1997) / International Tables C.
"""
from __future__ import annotations

from crystalmela.plugin_api.errors import CrystalmelaError

CU_KA1 = 1.54056
CU_KA2 = 1.54439     # the Kα2 line's wavelength, for stripping or rendering it

ANODES_KA1: dict[str, float] = {
    "Cu": 1.54056,
    "Co": 1.78897,
    "Mo": 0.70930,
    "Cr": 2.28970,
    "Fe": 1.93604,
    "Ag": 0.55941,
}


def anode_wavelength(anode: str) -> float:
    """Kα1 wavelength of an anode given by element symbol, case-insensitive."""
    for name, wl in ANODES_KA1.items():
        if name.lower() == anode.strip().lower():
            return wl
    raise CrystalmelaError(
        f"unknown anode {anode!r}; expected one of {', '.join(ANODES_KA1)} (or give --wavelength in Å)")


def check_wavelength(value: float, source: str = "wavelength") -> float:
    """Reject wavelengths no powder diffractometer uses (guards against nm/Å or keV mix-ups)."""
    v = float(value)
    if not (0.1 <= v <= 5.0):
        raise CrystalmelaError(
            f"{source} {value!r} Å is outside 0.1–5 Å; give the wavelength in ångström (Cu Kα1 = 1.54056)")
    return v


__all__ = ["ANODES_KA1", "CU_KA1", "CU_KA2", "anode_wavelength", "check_wavelength"]
