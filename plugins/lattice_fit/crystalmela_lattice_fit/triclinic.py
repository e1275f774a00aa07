"""Triclinic trial indexing (feature version 10): does a general (aP) cell index the peaks that no
monoclinic one does?

Q = A h² + B k² + C l² + D hk + E hl + F kl plus a zero shift. Trials as Ito's zone method makes
them: a P1/P-1 crystal has no systematic absences, so its shortest reciprocal vectors are among its
first lines, and (A, B, C) are every three of the first ``AXES_FIRST`` peaks. Each cross term comes
from the zone of two axes: the lines 1±1 0 of the (a*, b*) zone sit at A + B ± D, so every peak
gives a candidate |D| = |Q − A − B|, scored by how many of the zone's low lines h²A + k²B + hkD it
puts on a peak. Any value a metric allows is a candidate (|D| < 2√(AB), not the reduced cell's
|D| ≤ A): three lines such as 010, 001, 110 are a basis of the lattice too, just not a reduced one,
and allowing them raised the share of real triclinic patterns indexed from 0.23 to 0.53 (clean,
first version of this search). The best ``CROSS_KEEP`` per zone are combined (D, E ≥ 0 by the
choice of axis signs, F of either sign), ranked on the first ten peaks and the best ``TRIC_KEEP``
refined by ``indexing.search``.

A monoclinic or higher pattern is indexed by an aP cell too, with twice the lines and so half the
figure: the column says something beside the mP one (``monoclinic``). Measured on the real hold-out
(docs/experiments.md): every one of the first 20 peaks indexed with M > 10
where mP does not, for 0.73 of the triclinic patterns and 0.10 of the monoclinic ones (clean; 0.67
and 0.07 with version 12, 0.57 and 0.05 before its index-2 refinements).

Hand-written for the reason ``indexing`` is (no indexing library on PyPI); ≈ 21 ms a pattern (13 with
version 12, 11 before it; mean over the clean hold-out peak lists, docs/experiments.md).
"""
from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np

from . import indexing as ix

AXES_FIRST = 7      # peaks the three axial lines are drawn from
CROSS_KEEP = 4      # candidates kept per cross term
CROSS_RATIO = 0.95  # |D| < 2√(AB)·this (a metric needs |D| < 2√(AB); a reduced basis has |D| ≤ A)
TRIC_KEEP = 24      # trials refined
AXIS_MAX = 10       # largest index along an axis up to the last peak
MIN_PEAKS = 8       # six parameters and a zero shift: with fewer peaks any pattern is "indexed"
CHUNK = 256         # trials scored together (line tables sized by the largest cell of the chunk)
ZONE_HK = np.array([(h, k) for h in range(1, 4) for k in (-3, -2, -1, 1, 2, 3)], float)
# the seven half vectors that refine a lattice to one with twice its points (feature version 12)
HALF = np.array([(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1)], float) / 2.0
# the thirteen third vectors (first non-zero index 1) that refine it to three times its points (version 13)
THIRD = np.array([v for v in np.ndindex(3, 3, 3) if any(v) and v[np.flatnonzero(v)[0]] == 1], float) / 3.0


def metric(P: np.ndarray) -> np.ndarray:
    """Reciprocal metric tensors (n, 3, 3) of rows (A, B, C, D, E, F): Q = xᵀ G x, x = (h, k, l)."""
    P = np.atleast_2d(P)
    G = np.empty((P.shape[0], 3, 3))
    G[:, 0, 0], G[:, 1, 1], G[:, 2, 2] = P[:, 0], P[:, 1], P[:, 2]
    G[:, 0, 1] = G[:, 1, 0] = P[:, 3] / 2
    G[:, 0, 2] = G[:, 2, 0] = P[:, 4] / 2
    G[:, 1, 2] = G[:, 2, 1] = P[:, 5] / 2
    return G


def axes_d(P: np.ndarray, q: float, G: np.ndarray | None = None, det: np.ndarray | None = None) -> np.ndarray:
    """Each real axis's length in d-spacings at Q = q (a·√q …): the largest |h|, |k|, |l| of a line up
    to q. NaN for rows that are not a metric. ``G``, ``det``: P's metric tensors and their
    determinants, when the caller has them."""
    G = metric(P) if G is None else G
    with np.errstate(invalid="ignore"):
        ok = (np.linalg.det(G) if det is None else det) > 0
        inv = np.linalg.inv(np.where(ok[:, None, None], G, np.eye(3)))
        return np.where(ok[:, None], np.sqrt(q * np.diagonal(inv, axis1=1, axis2=2)), np.nan)


def plausible(P: np.ndarray, q_max: float, axis_max: float = AXIS_MAX) -> np.ndarray:
    """Mask of rows that are a positive-definite metric with every axis at most ``axis_max``
    d-spacings long up to ``q_max``."""
    P = np.atleast_2d(P)
    G = metric(P)
    det = np.linalg.det(G)
    pd = (P[:, 0] > 1e-5) & (P[:, 0] * P[:, 1] - P[:, 3] ** 2 / 4 > 1e-12) & (det > 1e-15)
    with np.errstate(invalid="ignore"):
        return pd & (np.nan_to_num(axes_d(P, q_max, G, det), nan=np.inf).max(axis=1) <= axis_max)


@lru_cache(maxsize=64)
def _half_space(hb: int, kb: int, lb: int) -> np.ndarray:
    """(h², k², l², hk, hl, kl) of every index up to the bounds, one of each ±(h, k, l) pair."""
    h, k, l = (a.ravel() for a in np.meshgrid(np.arange(-hb, hb + 1), np.arange(-kb, kb + 1),
                                             np.arange(0, lb + 1), indexing="ij"))
    keep = (l > 0) | ((l == 0) & (k > 0)) | ((l == 0) & (k == 0) & (h > 0))
    h, k, l = h[keep], k[keep], l[keep]
    return np.c_[h * h, k * k, l * l, h * k, h * l, k * l].astype(float)


def score_tric(P, q, tol, q_max, want_coef=True):
    """``indexing.search``'s scorer contract for rows P = (A, B, C, D, E, F): each peak's error to its
    nearest line in tolerances, that line's (h², k², l², hk, hl, kl), and the number of lines up to
    q_max. Every line of each chunk's index box is computed, sorted and searched."""
    P = np.atleast_2d(P)
    n, N = P.shape[0], tol.size
    q = np.broadcast_to(q, (n, N))
    best = np.full((n, N), np.inf)
    coef = np.zeros((n, N, 6)) if want_coef else None
    n_calc = np.zeros(n)
    bounds = np.floor(np.nan_to_num(axes_d(P, q_max + tol[-1]), nan=0.0)).astype(int)
    order = np.argsort(np.prod(bounds + 1, axis=1), kind="stable")
    cap = 4.0 * q_max
    for start in range(0, n, CHUNK):
        rows = order[start:start + CHUNK]
        X = _half_space(*np.maximum(bounds[rows].max(axis=0), 1))
        Qc = P[rows] @ X.T                                                      # (m, lines)
        n_calc[rows] = (Qc <= q_max).sum(axis=1)
        if want_coef:
            s = np.argsort(Qc, axis=1)
            S = np.minimum(np.take_along_axis(Qc, s, axis=1), cap)
        else:                                      # the same sorted values, without the indices
            S = np.minimum(np.sort(Qc, axis=1), cap)
        m, H = S.shape
        off = (np.arange(m) * 2.0 * cap)[:, None]
        qs = q[rows]
        pos = np.searchsorted((S + off).ravel(), (qs + off).ravel()).reshape(m, N) - np.arange(m)[:, None] * H
        r = np.arange(m)[:, None]
        lo, hi = np.clip(pos - 1, 0, H - 1), np.clip(pos, 0, H - 1)
        pick = np.where(np.abs(qs - S[r, lo]) <= np.abs(qs - S[r, hi]), lo, hi)
        best[rows] = ix.miss(qs - S[r, pick], qs, tol)
        if want_coef:
            coef[rows] = X[s[r, pick]]
    return best, coef, n_calc


def _rank_rows(score: np.ndarray) -> np.ndarray:
    """Each entry's place (0 = best) in its row's descending order, ties in column order."""
    order = np.argsort(-score, axis=1, kind="stable")
    return np.argsort(order, axis=1, kind="stable")


def _cross(q, tol, a, b):
    """``CROSS_KEEP`` candidate |cross terms| of the zone with axial lines ``a``, ``b`` (arrays over
    axis triples), taken in turn from two rankings of the zone lines h²a + k²b + hk·x: by the peaks
    they index (votes) and by the share of them up to the last peak that sit on a peak (precision).

    Votes alone (version 12 and before) favour a wrong cross term of a dense pattern, whose many zone
    lines reach many peaks by chance; precision alone loses some real cells whose weak zone lines are
    missing. Taking both (version 13) raised the share of synthetic val triclinic patterns whose own
    lattice the search finds from 0.63 to 0.74 clean and 0.49 to 0.59 lab-like, at the same number of
    candidates as votes with ``CROSS_KEEP`` 4 (docs/models.md)."""
    x = np.abs(q[None, :] - a[:, None] - b[:, None])                          # (triples, peaks)
    bad = ~(x < 2.0 * np.sqrt(a * b)[:, None] * CROSS_RATIO)
    h, k = ZONE_HK.T
    lines = (h * h)[None, None, :] * a[:, None, None] + (k * k)[None, None, :] * b[:, None, None] \
        + (h * k)[None, None, :] * x[..., None]                                # (triples, cand, zone lines)
    hit = np.abs(lines[..., None] - q[None, None, None, :]) <= tol[None, None, None, :]
    votes = hit.any(axis=2).sum(axis=-1)                                        # peaks indexed by the zone
    below = lines <= q[-1] + tol[-1]
    precision = (hit.any(axis=-1) & below).sum(axis=-1) / np.maximum(below.sum(axis=-1), 1) + 1e-3 * votes
    rv = _rank_rows(np.where(bad, -1.0, votes))
    rp = _rank_rows(np.where(bad, -1.0, precision))
    top = np.argsort(2 * np.minimum(rv, rp) + (rv > rp), axis=1, kind="stable")[:, :CROSS_KEEP]
    return np.take_along_axis(np.where(bad, 0.0, x), top, axis=1)


def tric_trials(q, slope, axes=None) -> np.ndarray:
    """Trial rows (A, B, C, D, E, F): every three of the first ``AXES_FIRST`` peaks as the axial
    lines (or the given ``axes``: three arrays A, B, C), cross terms from their zones (``_cross``)."""
    if axes is None:
        trip = np.array(list(combinations(range(min(q.size, AXES_FIRST)), 3)))
        A, B, C = q[trip].T
    else:
        A, B, C = axes
    tol = slope * ix.TOL_LOOSE
    D, E, F = _cross(q, tol, A, B), _cross(q, tol, A, C), _cross(q, tol, B, C)
    F = np.concatenate([F, -F], axis=1)
    nd, ne, nf = D.shape[1], E.shape[1], F.shape[1]
    t = A.shape[0]
    out = np.empty((t, nd, ne, nf, 6))
    out[..., 0], out[..., 1], out[..., 2] = (v[:, None, None, None] for v in (A, B, C))
    out[..., 3] = D[:, :, None, None]
    out[..., 4] = E[:, None, :, None]
    out[..., 5] = F[:, None, None, :]
    return out.reshape(-1, 6)


def finer_lattices(P: np.ndarray, vectors: np.ndarray = HALF) -> np.ndarray:
    """Each row's lattices of twice the reciprocal points (index 2, ``HALF``) or three times
    (``THIRD``): the basis with its first axis along which the vector has a component replaced by the
    vector. Rows (n·len(vectors), 6)."""
    G = metric(P)
    out = []
    for h in vectors:
        T = np.eye(3)
        T[int(np.flatnonzero(h)[0])] = h
        Gn = np.einsum("ij,njk,lk->nil", T, G, T)
        out.append(np.c_[Gn[:, 0, 0], Gn[:, 1, 1], Gn[:, 2, 2], 2 * Gn[:, 0, 1], 2 * Gn[:, 0, 2], 2 * Gn[:, 1, 2]])
    return np.concatenate(out)


def fit_tric(q, slope, axis_max: float = AXIS_MAX, trials=None):
    """(M, fraction indexed, lines per peak, (A, B, C, D, E, F), zero shift) of the best aP cell.
    ``trials(q, slope)`` makes the trial rows (default ``tric_trials``; docs/experiments.md
    tries others through it).

    The best ``TRIC_KEEP`` trials are ranked again beside their index-2 finer lattices
    (``finer_lattices``, version 12): when the axial lines are too weak to pick, the first peaks are
    lines such as 011, 002, 101, and every three of them span half the lattice at most. The refined
    best cell is then refined once more beside its index-2 and index-3 finer lattices (version 13),
    which a cell indexing a half or a third of the lines often is."""
    if q.size < MIN_PEAKS:
        return 0.0, 0.0, 0.0, None, 0.0
    q_max = q[-1] * 1.01
    P = (trials or tric_trials)(q, slope)
    P = ix.unique_rows(np.round(P[plausible(P, q_max, axis_max)], 6))
    if len(P) == 0:
        return 0.0, 0.0, 0.0, None, 0.0
    top = ix.rank_first(P, q, slope, score_tric, TRIC_KEEP)
    finer = finer_lattices(top)
    top = ix.rank_first(np.concatenate([top, finer[plausible(finer, q_max, axis_max)]]), q, slope, score_tric,
                         TRIC_KEEP)

    def valid(p, q_max):
        return bool(plausible(p, q_max, axis_max)[0])
    best = ix.search(top, q, slope, score_tric, valid, keep=len(top), positive=False)
    if best[3] is None:
        return best
    cand = np.concatenate([best[3][None], finer_lattices(best[3][None], np.concatenate([HALF, THIRD]))])
    cand = cand[plausible(cand, q_max, axis_max)]
    again = ix.search(cand, q, slope, score_tric, valid, keep=len(cand), positive=False)
    if again[3] is not None and again[0] * again[1] ** 4 > best[0] * best[1] ** 4 * 1.0001:
        return again
    return best


N_TRIC = 6          # numbers ``tric_features`` returns (``indexing.cell_columns``)


def tric_features(two_theta: np.ndarray, wavelength: float, mono: np.ndarray, cell: dict | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Of the best aP cell on the first ``N_OBS`` peaks: log10 M, fraction indexed, lines per peak, the
    same cell's (log10 M, fraction) at ``TOL_WIDE``; then its log10(M·f⁴) minus the mP cell's
    (``mono``: that pattern's ``monoclinic.mono_features``; −9 for an mP cell indexing nothing),
    positive when aP indexes what mP does not. Zeros with fewer than ``MIN_PEAKS`` peaks or no cell.
    Returned with the cell (A, …, F), or None. ``cell``: receives it with its figures
    (``indexing.keep_cell``)."""
    mono = np.asarray(mono, np.float32)
    mp = mono[0] + 4.0 * np.log10(max(float(mono[1]), 1e-3)) if mono[1] > 0 else -9.0
    return ix.cell_columns(two_theta, wavelength, MIN_PEAKS, fit_tric, score_tric, mp, cell)
