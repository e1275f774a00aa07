"""Orthorhombic extinction classes: which lines of a primitive orthorhombic cell a space group
allows, and de Wolff's M of a cell counted over those lines only (``indexing.extinction_cell``;
measured by benchmarks/ortho_lines.py, not in the shipped features).

Most organic orthorhombic crystals (P2₁2₁2₁, Pbca, Pna2₁ …) and many inorganic ones (Pnma, Cmcm,
Fddd …) have screw axes, glides or a centred lattice that remove a third to three quarters of the
lines. With one long axis, their primitive cell has so many spare lines that de Wolff's M counted
over all P lines is no better than a spurious cell's on a monoclinic or triclinic pattern; counted
over the lines their extinction class allows, the real cell's M rises (by the inverse of the share
of lines allowed), while a spurious cell's peaks need not fall on any class's allowed lines.

The absence rules come from gemmi's space-group operations (``Ops.is_systematically_absent``), for
the orthorhombic groups the generator's prior (``crystalmela.sgstats``) gives at least ``MIN_SHARE``
percent in either table, in every axis setting, merged when they forbid the same lines. In
orthorhombic groups whether hkl is absent depends only on which indices are zero and on each index
modulo 4 (the d-glides), so each rule is a table over 5³ index classes.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import permutations

import gemmi
import numpy as np

from crystalmela.sgstats import INORGANIC, ORGANIC

MIN_SHARE = 0.1     # percent: the orthorhombic groups whose extinction classes are tried
_REPS = np.array([0, 1, 2, 3, 4])            # index class c: 0, or the non-zero index ≡ c (mod 4)


def index_class(h: np.ndarray) -> np.ndarray:
    """0 for h = 0, else 1 + (h − 1) mod 4 (so 4, 8 … share class 4): ``_REPS`` of each index."""
    h = np.abs(np.asarray(h))
    return np.where(h == 0, 0, 1 + (h - 1) % 4)


@lru_cache(maxsize=None)
def rules() -> tuple[tuple[str, ...], np.ndarray]:
    """(names, allowed): the distinct absence patterns of the common orthorhombic groups, P first;
    ``allowed[r, 25·ch + 5·ck + cl]`` says whether rule r allows a line of index classes (ch, ck, cl).
    A name is the first group and setting found with that pattern (e.g. ``P b c a``)."""
    numbers = sorted({n for table in (ORGANIC, INORGANIC) for n, share in table.items()
                      if 16 <= n <= 74 and share >= MIN_SHARE})
    h, k, l = (x.ravel() for x in np.meshgrid(_REPS, _REPS, _REPS, indexing="ij"))
    tables = [np.ones(125, bool)]
    seen: dict[bytes, str] = {tables[0].tobytes(): "P"}
    for sg in gemmi.spacegroup_table():
        if sg.number not in numbers:
            continue
        ops = sg.operations()
        base = np.array([not ops.is_systematically_absent([int(a), int(b), int(c)]) for a, b, c in zip(h, k, l)])
        base = base.reshape(5, 5, 5)
        for perm in permutations(range(3)):
            allowed = base.transpose(perm).ravel()
            key = allowed.tobytes()
            if key not in seen:
                seen[key] = sg.xhm() + ("" if perm == (0, 1, 2) else " [" + "".join("abc"[i] for i in perm) + "]")
                tables.append(allowed)
    order = np.argsort([-t.sum() for t in tables], kind="stable")   # P (everything allowed) first
    names = tuple(list(seen.values())[i] for i in order)
    return names, np.array([tables[i] for i in order])


def rule_figures(p: np.ndarray, z: float, q: np.ndarray, slope: np.ndarray, tol_deg: float, q_max: float,
                 figure, miss) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the cell Q = A h² + B k² + C l² (``p``, zero shift ``z``) against the peaks ``q``: per
    rule of ``rules()``, (M, fraction indexed, allowed lines up to ``q_max``). ``figure`` and
    ``miss`` are ``indexing``'s de Wolff figure and error functions, so the figures are the ones the
    search reports for all P lines (rule 0)."""
    _, allowed = rules()
    p = np.asarray(p, float)
    hmax = np.floor(np.sqrt(q_max / p)).astype(int)
    h, k, l = (x.ravel() for x in np.meshgrid(*(np.arange(m + 1) for m in hmax), indexing="ij"))
    Q = p[0] * h * h + p[1] * k * k + p[2] * l * l
    keep = (Q <= q_max) & (Q > 0)
    Q, cls = Q[keep], (25 * index_class(h) + 5 * index_class(k) + index_class(l))[keep]
    order = np.argsort(Q)
    Q, cls = Q[order], cls[order]
    qc = q - z * slope
    tol = slope * tol_deg
    lo = np.searchsorted(Q, qc - tol, side="left")
    hi = np.searchsorted(Q, qc + tol, side="right")
    width = int(max((hi - lo).max(), 1))
    idx = lo[:, None] + np.arange(width)[None, :]                   # (peaks, window) candidate lines
    inside = idx < hi[:, None]
    idx = np.minimum(idx, Q.size - 1) if Q.size else np.zeros_like(idx)
    diff = (qc[:, None] - Q[idx]) if Q.size else np.full(idx.shape, np.inf)
    ok = allowed[:, cls[idx]] & inside[None] if Q.size else np.zeros((len(allowed),) + idx.shape, bool)
    err = np.where(ok, np.abs(miss(diff.reshape(1, -1), np.repeat(qc, width), np.repeat(tol, width))
                             ).reshape(diff.shape)[None], np.inf).min(axis=2)        # (rules, peaks)
    err = np.where(np.isfinite(err), err, 3.0)
    n_calc = allowed[:, cls].sum(axis=1).astype(float) if Q.size else np.zeros(len(allowed))
    M = figure(err, tol, n_calc, q_max)
    return M, (err <= 1.0).mean(axis=1), n_calc
