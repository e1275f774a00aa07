"""The seven crystal systems in their one canonical order, and how space groups map onto them."""
from __future__ import annotations

CRYSTAL_SYSTEMS: tuple[str, ...] = (
    "triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic",
)

DATASETS: tuple[str, ...] = ("full", "organic", "inorganic")

# Upper space-group number of each system (International Tables numbering).
_SG_BOUNDS = ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
              (167, "trigonal"), (194, "hexagonal"), (230, "cubic"))


def crystal_system(space_group_number: int) -> str:
    """Crystal system of a space group (143–167 trigonal, rhombohedral included; 168–194 hexagonal)."""
    n = int(space_group_number)
    if not 1 <= n <= 230:
        raise ValueError(f"space-group number must be 1–230, got {space_group_number!r}")
    for upper, name in _SG_BOUNDS:
        if n <= upper:
            return name
    raise AssertionError("unreachable")


__all__ = ["CRYSTAL_SYSTEMS", "DATASETS", "crystal_system"]
