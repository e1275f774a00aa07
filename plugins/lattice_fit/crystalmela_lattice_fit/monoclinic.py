"""Monoclinic trial indexing (feature version 9): does a primitive monoclinic cell index the peaks?

Q = A h² + B k² + C l² + D hl (b unique) plus a zero shift. Trials as TREOR makes them: every four of
the first ``FOUR_FIRST`` peaks assigned to every ordered four of twelve low-index lines (``BASE``),
solved for (A, B, C, D); the best ``FOUR_KEEP`` on the first ten peaks are refined and scored by
``indexing.search``, as the higher lattices are. The higher lattices are special monoclinic ones (an
orthorhombic cell is D = 0), so this column says something only beside them: a pattern mP indexes and
no higher family does is monoclinic; one nothing indexes is likely triclinic. Measured on the real
hold-out (docs/experiments.md): every one of the first 20 peaks indexed with
M > 10 for 0.71 of the monoclinic patterns with β beyond 5° of 90° (0.58 with version 12), 0.03 of
the triclinic ones.

Hand-written for the reason ``indexing`` is (no indexing library on PyPI); ≈ 55 ms a pattern (22 with
feature version 12, whose trials came from five peaks; mean over the clean hold-out peak lists,
docs/experiments.md).
"""
from __future__ import annotations

from functools import lru_cache
from itertools import combinations, permutations

import numpy as np

from . import indexing as ix

BASE = np.array([(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1), (-1, 0, 1), (1, 1, 1),
                 (-1, 1, 1), (2, 0, 0), (0, 0, 2), (0, 2, 0)], float)
FOUR_FIRST = 6      # peaks the four-line trials are drawn from (against five, a sixth
                    # raised the share of synthetic val monoclinic patterns whose own lattice is found
                    # from 0.76 to 0.84 clean and 0.59 to 0.71 lab-like, for 2.5× the time)
FOUR_KEEP = 24      # trials refined
AXIS_MAX = 10       # largest index along an axis up to the last peak (spurious large cells index anything)
MIN_PEAKS = 6       # four lines fix the cell: with fewer than six peaks any pattern is "indexed"
N_MONO = 6          # numbers ``mono_features`` returns (``indexing.cell_columns``)


def _line_families(A, B, C, D, q_max, tol):
    """Yield (k, l, mask of the trials with a line of that k, l up to q_max), k and l ascending, l
    stopping at the first value no trial reaches (the mask only shrinks as l grows)."""
    c_eff = np.maximum(C - D * D / (4 * A), 1e-9)            # the smallest Q of a line with this l, per l²
    k_max = int(np.sqrt(q_max / B.min())) + 1
    l_max = int(np.sqrt(q_max / c_eff.min())) + 1
    for k in range(k_max + 1):
        for l in range(l_max + 1):
            live = B * k * k + c_eff * l * l <= q_max + tol[-1]
            if not live.any():
                break
            yield k, l, live


def score_mono(P, q, tol, q_max, want_coef=True):
    """``indexing.search``'s scorer contract for monoclinic rows P = (A, B, C, D): each peak's error
    to its nearest line (h any sign, k ≥ 0, l ≥ 0; h ≥ 0 when l = 0) in tolerances, the (h², k², l², hl)
    taken, and the number of distinct-index lines up to q_max."""
    if len(P) <= DENSE_ROWS:
        return _score_mono_dense(P, q, tol, q_max, want_coef)
    A, B, C, D = P.T
    q = np.broadcast_to(q, (A.size, tol.size))
    best = np.full(q.shape, np.inf)
    coef = np.zeros(q.shape + (4,)) if want_coef else None
    n_calc = np.zeros(A.size)
    for k, l, live in _line_families(A, B, C, D, q_max, tol):
        # as indexing._score_ortho: only the trials with a line of this k, l in range
        rows = slice(None) if live.all() else np.flatnonzero(live)
        a, b, c, d, qs = A[rows], B[rows], C[rows], D[rows], q[rows]
        c0 = b * k * k + c * l * l
        disc = (d * l)[:, None] ** 2 - 4 * a[:, None] * (c0[:, None] - qs)
        root = np.sqrt(np.maximum(disc, 0.0))
        cur = best[rows]
        cc = coef[rows] if want_coef else None
        for sign in ((1.0,) if l == 0 else (1.0, -1.0)):
            h = np.rint((-(d * l)[:, None] + sign * root) / (2 * a[:, None]))
            if l == 0:
                h = np.abs(h) if k else np.maximum(np.abs(h), 1.0)
            err = ix.miss(qs - (a[:, None] * h * h + c0[:, None] + d[:, None] * h * l), qs, tol)
            if want_coef:
                better = err < cur
                for j, v in enumerate((h * h, np.full_like(h, k * k), np.full_like(h, l * l), h * l)):
                    cc[..., j] = np.where(better, v, cc[..., j])
            cur = np.minimum(cur, err)
        best[rows] = cur
        if want_coef:
            coef[rows] = cc
        d2 = (d * l) ** 2 - 4 * a * (c0 - q_max)
        s2 = np.sqrt(np.maximum(d2, 0.0))
        hi, lo = (-d * l + s2) / (2 * a), (-d * l - s2) / (2 * a)
        if l == 0:
            n = np.where(d2 >= 0, np.floor(hi) + 1, 0) - (1 if k == 0 else 0)
        else:
            n = np.where(d2 >= 0, np.floor(hi) - np.ceil(lo) + 1, 0)
        n_calc[rows] += np.maximum(n, 0)
    return best, coef, n_calc


DENSE_ROWS = 64     # score_mono computes every (k, l) line family at once for this many trials or fewer


def _score_mono_dense(P, q, tol, q_max, want_coef=True):
    """``score_mono`` for a few trials (the refinement's): the same arithmetic on every (k, l) in one
    array instead of a Python loop, whose overhead dominates for small arrays. The results are
    identical (the same operations on each element, the first minimum kept as the loop keeps it;
    ``tests/test_lattice_fit.py`` compares the two)."""
    A, B, C, D = P.T
    q = np.broadcast_to(q, (A.size, tol.size))
    ks, ls, lives = zip(*_line_families(A, B, C, D, q_max, tol))
    K, L, live = np.array(ks, float)[:, None], np.array(ls, float)[:, None], np.array(lives)
    a, b, c, d = A[None, :], B[None, :], C[None, :], D[None, :]              # (pairs, trials)
    c0 = b * K * K + c * L * L
    dl = d * L
    disc = dl[..., None] ** 2 - 4 * a[..., None] * (c0[..., None] - q)      # (pairs, trials, peaks)
    root = np.sqrt(np.maximum(disc, 0.0))
    errs, hs = [], []
    for sign in (1.0, -1.0):
        h = np.rint((-dl[..., None] + sign * root) / (2 * a[..., None]))
        l0 = (L == 0)[..., None]
        h = np.where(l0, np.where((K > 0)[..., None], np.abs(h), np.maximum(np.abs(h), 1.0)), h)
        err = ix.miss(q - (a[..., None] * h * h + c0[..., None] + d[..., None] * h * L[..., None]), q, tol)
        keep = live[..., None] if sign > 0 else live[..., None] & ~l0
        errs.append(np.where(keep, err, np.inf))
        hs.append(h)
    err = np.stack(errs, axis=1).reshape(-1, *q.shape)                       # loop order: pair, then sign
    first = np.argmin(err, axis=0)
    best = np.take_along_axis(err, first[None], axis=0)[0]
    coef = None
    if want_coef:
        h = np.stack(hs, axis=1).reshape(err.shape)[first, np.arange(q.shape[0])[:, None], np.arange(q.shape[1])]
        kk = np.repeat(K[:, 0] * K[:, 0], 2)[first]
        ll = np.repeat(L[:, 0] * L[:, 0], 2)[first]
        coef = np.stack([h * h, kk, ll, h * np.repeat(L[:, 0], 2)[first]], axis=-1)
    d2 = dl ** 2 - 4 * a * (c0 - q_max)
    s2 = np.sqrt(np.maximum(d2, 0.0))
    hi, lo = (-d * L + s2) / (2 * a), (-d * L - s2) / (2 * a)
    n = np.where(L == 0, np.where(d2 >= 0, np.floor(hi) + 1, 0) - (K == 0),
                 np.where(d2 >= 0, np.floor(hi) - np.ceil(lo) + 1, 0))
    n_calc = np.where(live, np.maximum(n, 0), 0).sum(axis=0)
    return best, coef, n_calc


@lru_cache(maxsize=None)
def _four_line_inverses() -> np.ndarray:
    """Inverse of the (h², k², l², hl) matrix of every non-singular ordered four of ``BASE``."""
    rows = np.c_[BASE[:, 0] ** 2, BASE[:, 1] ** 2, BASE[:, 2] ** 2, BASE[:, 0] * BASE[:, 2]]
    H = rows[np.array([p for c in combinations(range(len(BASE)), 4) for p in permutations(c)])]
    return np.linalg.inv(H[np.abs(np.linalg.det(H)) > 0.5])


def plausible(P: np.ndarray, q_max: float, axis_max: float = AXIS_MAX) -> np.ndarray:
    """Mask of rows (A, B, C, D) that are a monoclinic metric (positive, 4AC > D²) with every axis at
    most ``axis_max`` d-spacings long up to ``q_max``."""
    P = np.atleast_2d(P)
    A, B, C, D = P.T
    with np.errstate(divide="ignore", invalid="ignore"):
        axes = q_max / np.c_[A, B, C - D * D / (4 * A)]
        return (P > 1e-5).all(axis=1) & (4 * A * C > D * D * 1.0001) & (np.sqrt(axes).max(axis=1) <= axis_max)


def fit_mono_four_line(q, slope, axis_max: float = AXIS_MAX):
    """(M, fraction indexed, lines per peak, (A, B, C, D), zero shift) of the best mP cell from
    four-line trials. D ≥ 0 (h → −h turns one sign into the other)."""
    q_max = q[-1] * 1.01
    quads = np.array(list(combinations(range(min(q.size, FOUR_FIRST)), 4)))
    P = np.einsum("aij,tj->tai", _four_line_inverses(), q[quads]).reshape(-1, 4)
    P[:, 3] = np.abs(P[:, 3])
    P = ix.unique_rows(np.round(P[plausible(P, q_max, axis_max)], 6))
    if len(P) == 0:
        return 0.0, 0.0, 0.0, None, 0.0
    top = ix.rank_first(P, q, slope, score_mono, FOUR_KEEP)
    return ix.search(top, q, slope, score_mono, lambda p, q_max: bool(plausible(p, q_max, axis_max)[0]),
                      keep=len(top))


def mono_features(two_theta: np.ndarray, wavelength: float, lattice: np.ndarray, cell: dict | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Of the best mP cell on the first ``N_OBS`` peaks: log10 M, fraction indexed, lines per peak, the
    same cell's (log10 M, fraction) at ``TOL_WIDE``; then its log10(M·f⁴) minus the best higher
    family's (``lattice``: that pattern's ``indexing.lattice_features``), positive when mP indexes
    what no higher lattice does. Zeros with fewer than ``MIN_PEAKS`` peaks or no cell. Returned with
    the cell (A, B, C, D), or None. ``cell``: receives it with its figures (``indexing.keep_cell``)."""
    lat = np.asarray(lattice, np.float32)
    cols = [ix.FRACTION[k] for k in ix.FAMILIES]
    frac = lat[cols]
    higher = np.where(frac > 0, lat[[c - 1 for c in cols]] + 4.0 * np.log10(np.maximum(frac, 1e-3)), -9.0).max()
    return ix.cell_columns(two_theta, wavelength, MIN_PEAKS, fit_mono_four_line, score_mono, higher, cell)
