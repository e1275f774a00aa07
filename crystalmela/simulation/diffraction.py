"""Reflection lists: d-spacings and powder intensities m·|F|² of a Crystal, vectorised with NumPy.

A reflection list is independent of wavelength, profile and grid: |F|² depends only on sin θ / λ =
1/(2d). That is why data sets store reflection lists and render profiles on the fly (``profiles``).

Why hand-written: gemmi lists the unique reflections with systematic absences removed
(``make_miller_array``), but its structure-factor calculator works one reflection at a time in Python
loops; here one matrix product covers all reflections × all atom images. Phases are reduced to one
cycle in float32 before the trigonometry, which is the main speed gain over pymatgen.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import gemmi
import numpy as np

from crystalmela.simulation.structure import Crystal, operations

# d_min that reaches 2θ = 90° with Cu Kα1 (the paper's grid): λ / (2 sin 45°).
PAPER_D_MIN = 1.54056 / (2.0 * np.sin(np.radians(45.0)))


@dataclass
class Reflections:
    """Unique powder reflections, strongest-first order not implied: sorted by decreasing d."""

    d: np.ndarray            # Å
    intensity: np.ndarray    # multiplicity · |F|² (electrons², not normalised)
    hkl: np.ndarray          # one representative (int) per reflection
    multiplicity: np.ndarray

    def __len__(self) -> int:
        return len(self.d)


@lru_cache(maxsize=1024)
def _it92(elements: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    coefs = np.array([gemmi.Element(el).it92.get_coefs() for el in elements])
    return coefs[:, 0:4, None], coefs[:, 4:8, None], coefs[:, 8, None]


def form_factors(elements: list[str] | tuple[str, ...], stol2: np.ndarray) -> np.ndarray:
    """IT92 (Cromer–Mann) X-ray form factors, shape (n_elements, n_reflections); stol2 = (sinθ/λ)²."""
    a, b, c = _it92(tuple(elements))
    return (a * np.exp(-b * stol2[None, None, :])).sum(axis=1) + c


@lru_cache(maxsize=1024)
def _laue_ops(hall: str) -> gemmi.GroupOps:
    ops = gemmi.symops_from_hall(hall)
    ops.add_inversion()
    return ops


def _multiplicities(hkl: np.ndarray, hall: str) -> np.ndarray:
    """Powder multiplicity: |Laue group| / |stabiliser of hkl| (gemmi counts the stabiliser)."""
    laue = _laue_ops(hall)
    eps = laue.epsilon_factor_without_centering_array(hkl)
    return len(laue.sym_ops) // eps


@lru_cache(maxsize=1024)
def _phase_operations(hall: str) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """The operations a structure-factor sum needs, and the factor the rest contribute.

    Centring translations contribute a factor n_cen to every reflection that is not systematically
    absent (h·c is an integer); an inversion centre at the origin pairs each image with its inverse,
    so F is real, 2·Σ cos over proper rotations only. Returns (rot, tran, factor, centric).
    """
    ops = gemmi.symops_from_hall(hall)
    n_cen = len(ops.cen_ops)
    sym = list(ops.sym_ops)
    rot = np.array([op.rot for op in sym], dtype=float) / gemmi.Op.DEN
    tran = np.array([op.tran for op in sym], dtype=float) / gemmi.Op.DEN
    inversion = any(np.allclose(r, -np.eye(3)) and np.allclose(t % 1.0, 0.0)
                    for r, t in zip(rot, tran))
    if inversion:
        proper = np.linalg.det(rot) > 0
        rot, tran = rot[proper], tran[proper]
    for a in (rot, tran):
        a.setflags(write=False)
    return rot, tran, n_cen * (2 if inversion else 1), inversion


def reflections(crystal: Crystal, d_min: float = PAPER_D_MIN, *, adp: bool = True,
                merge_tol: float = 1e-9, min_relative: float = 0.0) -> Reflections:
    """All unique reflections with d ≥ d_min, their multiplicities and powder intensities m·|F|².

    ``adp=False`` ignores displacement parameters (as pymatgen does). Reflections whose d agree to
    ``merge_tol`` (relative) are merged, as they are one peak in any powder pattern.
    ``min_relative`` drops reflections weaker than that fraction of the strongest.
    """
    cell = crystal.unit_cell
    hkl = gemmi.make_miller_array(cell, crystal.spacegroup, d_min, 0.0, True)
    if len(hkl) == 0:
        return Reflections(np.empty(0), np.empty(0), np.empty((0, 3), int), np.empty(0, int))
    g = hkl @ crystal.frac_matrix  # rows of the fractionalisation matrix are a*, b*, c*
    inv_d2 = np.einsum("ni,ni->n", g, g)
    d = 1.0 / np.sqrt(inv_d2)
    stol2 = inv_d2 / 4.0

    # Atom images: the needed operations applied to every asymmetric-unit site, weighted so that a
    # site on a special position (fewer distinct images) still counts once per distinct copy.
    mult_site = crystal.multiplicities
    n_all = crystal.n_operations
    rot, tran, factor, centric = _phase_operations(crystal.hall)
    n_ops = len(rot)
    weight = crystal.occ * mult_site * (factor / n_all)
    images = (crystal.fract @ rot.transpose(0, 2, 1) + tran[:, None, :]).transpose(1, 0, 2)
    images = images.reshape(-1, 3)
    images -= np.floor(images)  # h integer: wrapping keeps phases exact and small for float32

    uniq, el_index = crystal.element_index
    f_el = form_factors(uniq, stol2)                    # (E, R)

    # Phases reduced to one cycle in float32: h·x mod 1, then cos/sin of 2π·that.
    phase = hkl.astype(np.float32) @ images.T.astype(np.float32)
    phase -= np.floor(phase)
    phase *= np.float32(2.0 * np.pi)

    # Per-image scattering weight (R, N_images): f(s)·occ·mult·factor/n_all·T(h).
    atom_w = f_el[el_index] * weight[:, None]           # (N_sites, R)
    if adp:
        b_iso = 8.0 * np.pi**2 * crystal.u_iso
        atom_w *= np.exp(-np.outer(b_iso, stol2))
    if adp and crystal.u_aniso is not None:
        w = np.repeat(atom_w, n_ops, axis=0).T * _aniso_factors(crystal, hkl, rot, cell, n_ops)
        w = w.astype(np.float32)
        f_re = np.einsum("ri,ri->r", np.cos(phase), w, dtype=np.float64)
        f_im = 0.0 if centric else np.einsum("ri,ri->r", np.sin(phase), w, dtype=np.float64)
    else:
        # Same displacement for all images of a site: sum the images first, then weight per site.
        n_sites = len(crystal.elements)
        w = atom_w.T.astype(np.float32)                 # (R, N_sites)
        c = np.cos(phase).reshape(len(hkl), n_sites, n_ops).sum(axis=2)
        f_re = np.einsum("rn,rn->r", c, w, dtype=np.float64)
        if centric:
            f_im = 0.0
        else:
            sn = np.sin(phase).reshape(len(hkl), n_sites, n_ops).sum(axis=2)
            f_im = np.einsum("rn,rn->r", sn, w, dtype=np.float64)
    f2 = f_re**2 + f_im**2

    mult = _multiplicities(hkl, crystal.hall)
    hkl = hkl.astype(np.int64)
    inten = mult * f2
    order = np.argsort(-d, kind="stable")
    d, inten, hkl, mult = d[order], inten[order], hkl[order], mult[order]
    if merge_tol > 0 and len(d) > 1:
        d, inten, hkl, mult = _merge(d, inten, hkl, mult, merge_tol)
    if min_relative > 0 and len(inten):
        keep = inten >= min_relative * inten.max()
        d, inten, hkl, mult = d[keep], inten[keep], hkl[keep], mult[keep]
    return Reflections(d, inten, hkl, mult)


def _aniso_factors(crystal: Crystal, hkl, rot, cell, n_ops) -> np.ndarray:
    """exp(-2π² hᵀ β h) for every reflection × atom image; sites without Uij keep their Uiso term (1)."""
    rc = cell.reciprocal()
    rs = np.array([rc.a, rc.b, rc.c])                   # reciprocal lengths a*, b*, c*
    u = crystal.u_aniso
    has = np.all(np.isfinite(u), axis=1)
    out = np.ones((len(hkl), len(u) * n_ops))
    if not has.any():
        return out
    U = np.zeros((len(u), 3, 3))
    U[:, 0, 0], U[:, 1, 1], U[:, 2, 2] = u[:, 0], u[:, 1], u[:, 2]
    U[:, 0, 1] = U[:, 1, 0] = u[:, 3]
    U[:, 0, 2] = U[:, 2, 0] = u[:, 4]
    U[:, 1, 2] = U[:, 2, 1] = u[:, 5]
    beta = 2.0 * np.pi**2 * U * np.outer(rs, rs)[None]   # fractional-basis tensor
    # Image x' = R x + t carries β' = R β Rᵀ; the factor is exp(-h β' hᵀ).
    beta_img = np.einsum("gij,njk,glk->ngil", rot, beta, rot).reshape(-1, 3, 3)
    h = hkl.astype(float)
    q = np.einsum("ri,nij,rj->rn", h, beta_img, h)
    fac = np.exp(-q)
    mask = np.repeat(has, n_ops)
    out[:, mask] = fac[:, mask]
    return out


def _merge(d, inten, hkl, mult, tol):
    """Merge runs of reflections whose d agree within a relative tolerance (accidental overlaps)."""
    new_group = np.empty(len(d), dtype=bool)
    new_group[0] = True
    new_group[1:] = np.abs(np.diff(d)) > tol * d[1:]
    if new_group.all():
        return d, inten, hkl, mult
    group = np.cumsum(new_group) - 1
    inten_m = np.bincount(group, weights=inten)
    mult_m = np.bincount(group, weights=mult).astype(int)
    first = np.flatnonzero(new_group)
    return d[first], inten_m, hkl[first], mult_m
