"""Crystal: a symmetric crystal structure as arrays, read from CIF with gemmi or built by the generator.

The simulator works on the asymmetric unit and the space group's operations, never on an expanded
cell list, so special positions, occupancies and anisotropic displacements stay exact. gemmi parses the
CIF (fast and tolerant, with line numbers in its errors); this module only turns its objects into arrays
and checks what a diffraction calculation needs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import gemmi
import numpy as np

from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.plugin_api.systems import crystal_system

# Elements that make an entry "organic" in the paper's sense (C and H present; metal-organics included).
_ORGANIC_REQUIRED = ("C", "H")


class StructureError(CrystalmelaError):
    """A crystal structure that cannot be read or is unusable; says which file, where and why."""

    def __init__(self, path: str | Path | None, message: str, *, line: int | None = None,
                 block: str | None = None, reason: str = "invalid"):
        self.path = str(path) if path is not None else None
        self.line = line
        self.block = block
        self.reason = reason
        where = self.path or "<structure>"
        if line is not None:
            where += f":{line}"
        if block:
            where += f" [data_{block}]"
        super().__init__(f"{where}: {message}")


@dataclass
class Crystal:
    """Asymmetric unit + space group.  Lengths in Å, angles in degrees, U in Å².

    ``u_aniso`` rows are (U11, U22, U33, U12, U13, U23) in the CIF convention (components on the
    reciprocal-length-normalised axes), NaN where a site has no anisotropic parameters.
    """

    cell: tuple[float, float, float, float, float, float]
    hall: str
    elements: list[str]
    fract: np.ndarray
    occ: np.ndarray
    u_iso: np.ndarray
    u_aniso: np.ndarray | None = None
    name: str = ""
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.fract = np.asarray(self.fract, dtype=float).reshape(-1, 3)
        n = len(self.fract)
        self.occ = np.asarray(self.occ, dtype=float).reshape(n)
        self.u_iso = np.asarray(self.u_iso, dtype=float).reshape(n)
        if self.u_aniso is not None:
            self.u_aniso = np.asarray(self.u_aniso, dtype=float).reshape(n, 6)
        if len(self.elements) != n:
            raise ValueError("elements and fract differ in length")

    @property
    def spacegroup(self) -> gemmi.SpaceGroup:
        return _spacegroup(self.hall)

    @property
    def spacegroup_number(self) -> int:
        return self.spacegroup.number

    @property
    def crystal_system(self) -> str:
        return crystal_system(self.spacegroup_number)

    # Derived quantities are cached: a Crystal is treated as immutable once built.
    @cached_property
    def unit_cell(self) -> gemmi.UnitCell:
        return gemmi.UnitCell(*self.cell)

    @cached_property
    def frac_matrix(self) -> np.ndarray:
        return np.array(self.unit_cell.frac.mat, dtype=float)

    @cached_property
    def orth_matrix(self) -> np.ndarray:
        return np.array(self.unit_cell.orth.mat, dtype=float)

    @property
    def n_operations(self) -> int:
        return len(operations(self.hall)[0])

    @cached_property
    def element_index(self) -> tuple[tuple[str, ...], np.ndarray]:
        uniq = tuple(sorted(set(self.elements)))
        return uniq, np.array([uniq.index(e) for e in self.elements])

    @cached_property
    def multiplicities(self) -> np.ndarray:
        """Copies of each site in the unit cell (fewer on special positions); 0.05 Å tolerance."""
        return self.site_multiplicities()

    def site_multiplicities(self, tol: float = 0.05) -> np.ndarray:
        """Number of copies of each site in the unit cell (a site on a special position has fewer)."""
        rot, tran = operations(self.hall)
        delta = (self.fract @ rot.transpose(0, 2, 1) + tran[:, None, :]) - self.fract[None]
        delta -= np.round(delta)
        cart = delta @ self.orth_matrix.T
        close = np.einsum("gni,gni->gn", cart, cart) < tol * tol
        stabiliser = np.maximum(close.sum(axis=0), 1)
        return len(rot) / stabiliser

    def formula(self) -> dict[str, float]:
        """Unit-cell contents per element (occupancy-weighted)."""
        counts: dict[str, float] = {}
        for el, w in zip(self.elements, self.occ * self.multiplicities):
            counts[el] = counts.get(el, 0.0) + float(w)
        return counts

    def formula_string(self) -> str:
        return " ".join(f"{el}{_fmt_count(n)}" for el, n in sorted(self.formula().items()))

    @property
    def is_organic(self) -> bool:
        """The paper's rule: carbon and hydrogen present (metal-organics count as organic)."""
        present = set(self.elements)
        return all(e in present for e in _ORGANIC_REQUIRED)

    def density(self) -> float:
        """Density in g/cm³ from the unit-cell contents."""
        mass = sum(gemmi.Element(el).weight * n for el, n in self.formula().items())
        return mass * 1.66053906660 / self.unit_cell.volume


def _fmt_count(n: float) -> str:
    return str(int(round(n))) if abs(n - round(n)) < 1e-3 else f"{n:.3g}"


@lru_cache(maxsize=1024)
def _spacegroup(hall: str) -> gemmi.SpaceGroup:
    sg = gemmi.find_spacegroup_by_ops(gemmi.symops_from_hall(hall))
    if sg is None:
        raise ValueError(f"not a tabulated space-group setting: Hall symbol {hall!r}")
    return sg


@lru_cache(maxsize=1024)
def operations(hall: str) -> tuple[np.ndarray, np.ndarray]:
    """All operations (centring included) as float rotation (n, 3, 3) and translation (n, 3) arrays."""
    ops = list(gemmi.symops_from_hall(hall))
    rot = np.array([op.rot for op in ops], dtype=float) / gemmi.Op.DEN
    tran = np.array([op.tran for op in ops], dtype=float) / gemmi.Op.DEN
    rot.setflags(write=False)
    tran.setflags(write=False)
    return rot, tran


# ---------------------------------------------------------------------------------------------------
# CIF

_LINE_RE = re.compile(r":(\d+)(?::\d+)?(?:\(\d+\))?\b")


def _gemmi_line(message: str) -> int | None:
    m = _LINE_RE.search(message)
    return int(m.group(1)) if m else None


def read_cif_document(path: str | Path) -> tuple[gemmi.cif.Document, list[str]]:
    """Parse a CIF; duplicated tags (common in hand-edited files) are tolerated with a note."""
    path = Path(path)
    notes: list[str] = []
    if not path.is_file():
        raise StructureError(path, "no such file", reason="unreadable")
    try:
        return gemmi.cif.read_file(str(path)), notes
    except (RuntimeError, ValueError) as exc:
        msg = str(exc)
        if "duplicate tag" not in msg:
            detail = msg.split(": ", 1)[-1] if str(path) in msg else msg
            raise StructureError(path, f"not a readable CIF: {detail}", line=_gemmi_line(msg),
                                 reason="cif_syntax") from None
        notes.append("duplicate CIF tags tolerated: " + msg.split(": ", 1)[-1])
    try:
        return gemmi.cif.read_file(str(path), check_level=0), notes
    except (RuntimeError, ValueError) as exc:
        raise StructureError(path, f"not a readable CIF: {exc}", line=_gemmi_line(str(exc)),
                             reason="cif_syntax") from None


def _has_sites(block: gemmi.cif.Block) -> bool:
    return block.find_value("_atom_site_fract_x") is not None or bool(
        block.find_loop("_atom_site_fract_x"))


def read_cif(path: str | Path, block: str | None = None) -> list[Crystal]:
    """Every structure (data block with atom sites) in a CIF, or the one named ``block``."""
    doc, notes = read_cif_document(path)
    blocks = [b for b in doc if (block is None or b.name == block)]
    if block is not None and not blocks:
        raise StructureError(path, f"no data block named {block!r}; blocks: "
                             + ", ".join(b.name for b in doc), reason="no_block")
    crystals = [crystal_from_block(b, path, notes) for b in blocks if _has_sites(b)]
    if not crystals:
        raise StructureError(path, "no atomic coordinates (_atom_site_fract_x) in any data block",
                             reason="no_coordinates")
    return crystals


def _float_or_none(block: gemmi.cif.Block, tag: str) -> float | None:
    value = block.find_value(tag)
    if value is None or value in ("?", "."):
        return None
    try:
        return gemmi.cif.as_number(value)
    except Exception:
        return None


def crystal_from_block(block: gemmi.cif.Block, path: str | Path = "", notes: list[str] | None = None
                       ) -> Crystal:
    """Convert one CIF block; raise StructureError naming the block and the problem."""
    name = block.name
    try:
        st = gemmi.make_small_structure_from_block(block)
    except (RuntimeError, ValueError) as exc:
        raise StructureError(path, f"cannot build a structure: {exc}", block=name,
                             line=_gemmi_line(str(exc))) from None
    notes = list(notes or [])
    missing = [t for t in ("_cell_length_a", "_cell_length_b", "_cell_length_c")
               if _float_or_none(block, t) is None]
    if missing:
        raise StructureError(path, "cell parameters missing: " + ", ".join(missing), block=name,
                             reason="cell")
    cell = st.cell
    params = (cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma)
    if not all(np.isfinite(params)) or min(params[:3]) <= 0 or cell.volume <= 0 or not np.isfinite(
            cell.volume):
        raise StructureError(path, f"missing or impossible cell parameters {params}", block=name,
                             reason="cell")
    sg = st.spacegroup
    if sg is None:
        if st.symops or st.spacegroup_hall or st.spacegroup_hm:
            raise StructureError(path, "symmetry operations or space-group symbol not recognised "
                                 f"(H-M {st.spacegroup_hm!r}, Hall {st.spacegroup_hall!r})",
                                 block=name, reason="symmetry")
        notes.append("no symmetry given: P1 assumed")
        sg = gemmi.SpaceGroup("P 1")
    if not st.sites:
        raise StructureError(path, "no atom sites", block=name, reason="no_coordinates")
    elements, fract, occ, u_iso, u_aniso = [], [], [], [], []
    any_aniso = False
    for site in st.sites:
        el = site.element.name
        if el == "X" or site.element.atomic_number == 0:
            raise StructureError(path, f"site {site.label!r}: unknown element in type symbol "
                                 f"{site.type_symbol!r}", block=name, reason="element")
        if el == "D":
            el = "H"
        xyz = (site.fract.x, site.fract.y, site.fract.z)
        if not all(np.isfinite(xyz)):
            raise StructureError(path, f"site {site.label!r}: coordinates missing", block=name,
                                 reason="no_coordinates")
        elements.append(el)
        fract.append(xyz)
        occ.append(site.occ if np.isfinite(site.occ) else 1.0)
        u_iso.append(site.u_iso if np.isfinite(site.u_iso) and site.u_iso > 0 else 0.0)
        if site.aniso.nonzero():
            any_aniso = True
            a = site.aniso
            u_aniso.append((a.u11, a.u22, a.u33, a.u12, a.u13, a.u23))
        else:
            u_aniso.append((np.nan,) * 6)
    occ_arr = np.clip(np.asarray(occ, dtype=float), 0.0, 1.0)
    meta = {
        "rwp": _rwp(block),
        "notes": notes,
        "cif_spacegroup": st.spacegroup_hm,
    }
    return Crystal(cell=params, hall=sg.hall, elements=elements, fract=np.asarray(fract),
                   occ=occ_arr, u_iso=np.asarray(u_iso), u_aniso=np.asarray(u_aniso) if any_aniso else None,
                   name=name, source=str(path), meta=meta)


def _rwp(block: gemmi.cif.Block) -> float | None:
    """The profile Rwp a powder refinement reports (as a fraction), if the CIF states one."""
    value = _float_or_none(block, "_pd_proc_ls_prof_wR_factor")
    if value is None:
        return None
    return value / 100.0 if value > 1.0 else value
