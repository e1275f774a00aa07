"""One structure → one table row: labels, metadata and its reflection list (d, relative m·|F|²)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from crystalmela.simulation.diffraction import reflections
from crystalmela.simulation.structure import Crystal

SCHEMA = pa.schema([
    ("id", pa.string()),
    ("source", pa.string()),            # "synthetic" or "cif"
    ("organic", pa.bool_()),
    ("space_group", pa.int16()),
    ("crystal_system", pa.string()),
    ("a", pa.float32()), ("b", pa.float32()), ("c", pa.float32()),
    ("alpha", pa.float32()), ("beta", pa.float32()), ("gamma", pa.float32()),
    ("formula", pa.string()),
    ("n_atoms", pa.float32()),
    ("density", pa.float32()),
    ("d", pa.list_(pa.float32())),          # Å, decreasing
    ("intensity", pa.list_(pa.float32())),  # m·|F|², strongest = 1
    ("hkl", pa.list_(pa.int16())),          # one representative per reflection, flattened (3 per d)
    ("hall", pa.string()),                  # Hall symbol of the setting hkl refers to
])

MIN_RELATIVE = 5e-4  # weaker reflections are invisible on a 0–1000 scale; not stored


def crystal_row(crystal: Crystal, ident: str, source: str, d_min: float) -> dict | None:
    """The row for a crystal, or None if it has no reflection in range."""
    refl = reflections(crystal, d_min, min_relative=MIN_RELATIVE)
    if len(refl) == 0 or refl.intensity.max() <= 0:
        return None
    a, b, c, al, be, ga = crystal.cell
    formula = crystal.formula()
    return {
        "id": ident, "source": source, "organic": crystal.is_organic,
        "space_group": crystal.spacegroup_number, "crystal_system": crystal.crystal_system,
        "a": a, "b": b, "c": c, "alpha": al, "beta": be, "gamma": ga,
        "formula": crystal.formula_string(), "n_atoms": float(sum(formula.values())),
        "density": crystal.density(),
        "d": refl.d.astype(np.float32),
        "intensity": (refl.intensity / refl.intensity.max()).astype(np.float32),
        "hkl": refl.hkl.astype(np.int16).ravel(),
        "hall": crystal.hall,
    }


def to_table(rows: list[dict]) -> pa.Table:
    if not rows:
        return SCHEMA.empty_table()
    cols = {name: [r[name] for r in rows] for name in SCHEMA.names}
    return pa.Table.from_pydict(cols, schema=SCHEMA)
