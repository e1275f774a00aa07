"""Trial indexing: how well the peak positions fit a cubic, tetragonal, hexagonal, rhombohedral or
orthorhombic lattice, scored by de Wolff's figure of merit. Its search (``search``, ``rank_first``,
``miss``, ``keep_cell``) is public: the monoclinic and triclinic searches run on it.

This is what a crystallographer does first with a powder pattern: a lattice with symmetry constraints
predicts the lines Q = 1/d² = Σ pⱼ·cⱼ(hkl) from one to three parameters, and a pattern that such a
lattice indexes with few spare lines is very likely of that symmetry. The peak-position models only
see raw positions; these figures give them the metric test directly.

Written by hand: the indexing programs crystallographers use (DICVOL, TREOR, McMaille, the GSAS-II
indexer) are not Python libraries on PyPI, and a full ab-initio indexer is not needed for a feature.
Small and fast enough to run on every training pattern: trial cells come from assigning the first peaks to low-index lines, every trial is scored
against the first ``N_OBS`` peaks at once (nearest allowed line per peak, vectorised), and the best few
are refined by linear least squares on the lines they index.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import combinations, product

import numpy as np

N_OBS = 20          # peaks used (de Wolff's M20)
# Tolerances in ° 2θ.
TOL_2THETA = 0.025  # a peak is indexed when a line lies this close (after the zero shift)
TOL_WIDE = 0.05     # the second, wider window of the figures
TOL_LOOSE = 0.1     # for scoring trial cells, before refinement
TOL_MID = 0.05      # second refinement pass
Z_MAX = 0.125       # largest zero shift refined
N_REFINE = 8        # best trials refined by least squares
FIRST = 10          # trials with two or more parameters are ranked on this many peaks
INDEX_MAX = 12      # largest |h|, |k| (and |l| for cubic) in the line tables
L_MAX = 40          # largest l of the two-parameter lattices (c up to 40 Å reaches l ≈ 45 at 90°)


@lru_cache(maxsize=None)
def cubic_table(centering: str) -> np.ndarray:
    """Sorted distinct s = h²+k²+l² > 0 of the allowed reflections of a P, I or F cubic lattice."""
    r = np.arange(-INDEX_MAX, INDEX_MAX + 1)
    h, k, l = np.meshgrid(r, r, r, indexing="ij")
    ok = (h != 0) | (k != 0) | (l != 0)
    if centering == "I":
        ok &= (h + k + l) % 2 == 0
    elif centering == "F":
        ok &= ((h % 2 == k % 2) & (k % 2 == l % 2))
    s = (h * h + k * k + l * l)[ok]
    return np.unique(s).astype(float)


@lru_cache(maxsize=None)
def planar_tables(kind: str) -> tuple[np.ndarray, ...]:
    """Per l = 0 … L_MAX: sorted distinct in-plane m for the lattice ``kind``.

    tP: m = h²+k²; tI: the same with h+k+l even; hP: m = h²+hk+k²; hR (hexagonal axes, obverse):
    m = h²+hk+k² with −h+k+l ≡ 0 (mod 3). ``hP-hhl`` and ``hP-h0l`` are hP with the conditions of a
    c-glide or 6₃ axis: 00l and hhl (resp. h0l, i.e. h−h0l) only with l even (P6₃/mmc, P6₃/m, P-31c …
    resp. P6₃cm, P-3c1 …): lines of those families with odd l are removed."""
    r = np.arange(-INDEX_MAX, INDEX_MAX + 1)
    h, k = np.meshgrid(r, r, indexing="ij")
    out = []
    for l in range(L_MAX + 1):
        if kind in ("tP", "tI"):
            m = h * h + k * k
            ok = np.ones_like(m, dtype=bool)
            if kind == "tI":
                ok = (h + k + l) % 2 == 0
        else:
            m = h * h + h * k + k * k
            ok = np.ones_like(m, dtype=bool)
            if kind == "hR":
                ok = (-h + k + l) % 3 == 0
            elif kind in ("hP-hhl", "hP-h0l") and l % 2 == 1:
                # the six (h, k) of each family (signs and 120° rotations), m = 3h² resp. h²
                fam = ((h == k) | (k == -2 * h) | (h == -2 * k)) if kind == "hP-hhl" else \
                    ((h == 0) | (k == 0) | (h == -k))
                ok = ~fam
        if l == 0:
            ok &= m > 0
        out.append(np.unique(m[ok]).astype(float))
    return tuple(out)


def miss(diff: np.ndarray, q: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """|observed − calculated| Q in units of each peak's tolerance."""
    return np.abs(diff) / tol[None, :]


def unique_rows(P: np.ndarray) -> np.ndarray:
    """``np.unique(P, axis=0)`` (the same rows in the same lexicographic order), 2× faster: that
    sorts rows as structured records."""
    S = P[np.lexsort(P.T[::-1])]
    return S[np.r_[True, (S[1:] != S[:-1]).any(axis=1)]] if len(S) else S


def _nearest(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The element of the sorted ``table`` nearest each ``x`` (any shape)."""
    if table.size == 0:
        return np.full(x.shape, np.inf)
    i = np.clip(np.searchsorted(table, x), 1, table.size - 1) if table.size > 1 else np.zeros(x.shape, int)
    lo, hi = table[i - 1] if table.size > 1 else table[i], table[i]
    return np.where(np.abs(x - lo) <= np.abs(x - hi), lo, hi)


def _score_planar(P, q, tol, tables, q_max, want_coef=True):
    """For trial cells P = (A, C) (n, 2): each observed line's error (n, N) to its nearest allowed line
    in units of its tolerance, the assigned coefficients (n, N, 2) = (m, l²) (None unless
    ``want_coef``: only refinement needs them), and the number of lines up to q_max (n,)."""
    A, C = P[:, 0], P[:, 1]
    q = np.broadcast_to(q, (A.size, tol.size))            # one row per trial (its own zero shift)
    n, N = q.shape
    best = np.full((n, N), np.inf)
    coef = np.zeros((n, N, 2)) if want_coef else None
    n_calc = np.zeros(n)
    for l, table in enumerate(tables):
        rest = q - C[:, None] * l * l                     # what the in-plane part must supply
        if not (rest > -tol[None, :]).any():
            break
        m = _nearest(table, rest / A[:, None])
        err = miss(q - (A[:, None] * m + C[:, None] * l * l), q, tol)
        if want_coef:
            better = err < best
            coef[..., 0] = np.where(better, m, coef[..., 0])
            coef[..., 1] = np.where(better, l * l, coef[..., 1])
        best = np.minimum(best, err)
        lim = (q_max - C * l * l) / A
        n_calc += np.where(lim >= 0, np.searchsorted(table, lim, side="right"), 0)
    return best, coef, n_calc


def _score_cubic(P, q, tol, table, q_max, want_coef=True):
    A = P[:, 0]
    q = np.broadcast_to(q, (A.size, tol.size))
    s = _nearest(table, q / A[:, None])
    err = miss(q - A[:, None] * s, q, tol)
    return err, s[..., None], np.searchsorted(table, q_max / A, side="right").astype(float)


def _figure(err: np.ndarray, tol: np.ndarray, n_calc: np.ndarray, q_max: float) -> np.ndarray:
    """de Wolff's M = Q_max / (2 ε̄ N_calc), with an unindexed peak counted at three times the
    tolerance and ε̄ floored at a tenth of it (a perfect fit is as good as the peak positions allow)."""
    e = np.where(err <= 1.0, np.maximum(err, 0.1), 3.0) * tol[None, :]
    return q_max / (2.0 * e.mean(axis=1) * np.maximum(n_calc, 1))


def _rank(err: np.ndarray, tol: np.ndarray, n_calc: np.ndarray, q_max: float) -> np.ndarray:
    """Trials ranked by M times the fraction indexed to the fourth power: a tiny cell with three
    lines otherwise wins on M while indexing almost nothing."""
    return _figure(err, tol, n_calc, q_max) * (err <= 1.0).mean(axis=1) ** 4


def peaks_q(two_theta: np.ndarray, wavelength: float) -> tuple[np.ndarray, np.ndarray]:
    """Q = 1/d² (Å⁻²) of peaks at ``two_theta`` and dQ/d(2θ) per degree there."""
    t = np.radians(np.asarray(two_theta, float))
    q = (2.0 * np.sin(t / 2.0) / wavelength) ** 2
    slope = 2.0 * np.sin(t) / wavelength**2 * np.radians(1.0)     # dQ/dt = 2 sin t / λ², t = 2θ
    return q, slope


def search(trials, q, slope, score, valid, first: int | None = None, keep: int = N_REFINE,
            positive: bool = True, select=None):
    """Score trial parameter rows against the peaks, refine the best few (parameters and a zero shift,
    by weighted least squares on the lines each indexes) and return the best as
    (M, fraction indexed, lines per peak, parameters).

    Trials are scored at the loose tolerance (trial cells come from shifted low-angle peaks, whose
    errors grow along the pattern); refinement narrows it; the figures use ``TOL_2THETA`` after the
    zero shift is removed. The zero shift stands for every near-constant offset: zero error, sample
    displacement at low angles, the Kα1+Kα2 blend. ``first``: trials are ranked on the first peaks
    only (for families with many trials), the refinement uses all of them. ``positive``: refined
    parameters must all be positive (not so for the cross terms of a triclinic metric). ``select``:
    picks the result from the refined rows and their zero shifts instead (``select(P, z)``)."""
    if trials.shape[0] == 0:
        return 0.0, 0.0, 0.0, None, 0.0
    q_max = q[-1] + slope[-1] * TOL_2THETA
    loose = slope * TOL_LOOSE
    k = q.size if first is None else min(first, q.size)
    q_first = q_max if k == q.size else q[k - 1] + slope[k - 1] * TOL_2THETA
    err, _, n_calc = score(trials, q[:k], loose[:k], q_first, want_coef=False)
    P = trials[np.argsort(-_rank(err, loose[:k], n_calc, q_first))[:keep]].copy()
    z = np.zeros(P.shape[0])
    for tol_deg in (TOL_LOOSE, TOL_MID):
        qc = q[None, :] - z[:, None] * slope[None, :]
        e, coef, _ = score(P, qc, slope * tol_deg, q_max)
        for i in range(P.shape[0]):
            use = e[i] <= 1.0
            if use.sum() < P.shape[1] + 2:
                continue
            G = np.c_[coef[i, use], slope[use]] / slope[use, None]
            p, *_ = np.linalg.lstsq(G, q[use] / slope[use], rcond=None)
            if (not positive or (p[:-1] > 1e-5).all()) and abs(p[-1]) <= Z_MAX and valid(p[:-1], q_max):
                P[i], z[i] = p[:-1], p[-1]
    if select is not None:
        return select(P, z)
    return _pick(P, z, q, slope, score)


def _pick(P, z, q, slope, score):
    """``search``'s result from its refined rows P and zero shifts z: the best ranked at
    ``TOL_2THETA``."""
    q_max = q[-1] + slope[-1] * TOL_2THETA
    tol = slope * TOL_2THETA
    e, _, n_calc = score(P, q[None, :] - z[:, None] * slope[None, :], tol, q_max, want_coef=False)
    r = _rank(e, tol, n_calc, q_max)
    b = int(np.argmax(r))
    if r[b] <= 0:
        return 0.0, 0.0, 0.0, P[b], float(z[b])
    return (float(_figure(e[b:b + 1], tol, n_calc[b:b + 1], q_max)[0]), float((e[b] <= 1).mean()),
            float(n_calc[b] / q.size), P[b], float(z[b]))


def rank_first(P, q, slope, score, keep: int) -> np.ndarray:
    """The ``keep`` best trial rows of P ranked on the first ``FIRST`` peaks at the loose tolerance
    (the families with many trials rank them so before ``search`` refines them)."""
    k = min(FIRST, q.size)
    q_first = q[k - 1] + slope[k - 1] * TOL_2THETA
    loose = slope[:k] * TOL_LOOSE
    err, _, n_calc = score(P, q[:k], loose, q_first, want_coef=False)
    return P[np.argsort(-_rank(err, loose, n_calc, q_first))[:keep]]


def cell_figures(two_theta, wavelength: float, min_peaks: int, fit, score, cell: dict | None = None):
    """(log10 M, fraction indexed, lines per peak, log10 M and fraction at ``TOL_WIDE``) of the cell
    ``fit(q, slope)`` finds on the first ``N_OBS`` peaks, scored by ``score``, and that cell's
    parameters; None with fewer than ``min_peaks`` peaks or no cell (the monoclinic and triclinic
    columns). ``cell``: receives the cell (``keep_cell``)."""
    tt = np.sort(np.asarray(two_theta, float))[:N_OBS]
    if tt.size < min_peaks:
        return None
    q, slope = peaks_q(tt, wavelength)
    M, f, n, p, z = fit(q, slope)
    if p is None or f <= 0:
        return None
    keep_cell(cell, M, f, p, z)
    return (np.log10(max(M, 1e-3)), f, n, *_rescore(score, p, z, q, slope)), p


def cell_columns(two_theta, wavelength: float, min_peaks: int, fit, score, against: float,
                 cell: dict | None = None):
    """The six columns of the mP and aP cells: ``cell_figures``' five, then the cell's log10(M·f⁴)
    minus ``against`` (the competing lattices' same score), with the cell; zeros and None with no
    cell. ``cell``: as for ``cell_figures``."""
    out = np.zeros(6, np.float32)
    found = cell_figures(two_theta, wavelength, min_peaks, fit, score, cell)
    if found is None:
        return out, None
    fig, cell = found
    out[:5] = fig
    out[5] = out[0] + 4.0 * np.log10(max(fig[1], 1e-3)) - against
    return out, cell


def _rescore(score, p, z, q, slope, tol_deg=TOL_WIDE):
    """(log10 M, fraction indexed) of the refined cell ``p`` (zero shift ``z``) at tolerance
    ``tol_deg`` and with the lines ``score`` allows: how the best cell fares under a wider window
    (lab patterns: blends and noise move peaks beyond ``TOL_2THETA``) or under absence conditions."""
    if p is None:
        return 0.0, 0.0
    tol = slope * tol_deg
    q_max = q[-1] + slope[-1] * TOL_2THETA
    e, _, n_calc = score(np.asarray(p, float)[None, :], q[None, :] - z * slope[None, :], tol, q_max,
                         want_coef=False)
    M = float(_figure(e, tol, n_calc, q_max)[0]) if (e <= 1).any() else 0.0
    return float(np.log10(max(M, 1e-3))), float((e[0] <= 1).mean())


def keep_cell(cell: dict | None, M, f, p, z) -> None:
    """Put a search's refined cell into the caller's ``cell`` dict: ``params`` (that family's
    parameters), ``zero`` (° 2θ), ``M``, ``fraction``; nothing for no cell. What ``cells.describe``
    shows a user; the features never read it."""
    if cell is not None and p is not None:
        cell.update(params=np.asarray(p, float).copy(), zero=float(z), M=float(M), fraction=float(f))


def fit_planar(q, slope, kind: str, cell: dict | None = None):
    """Best (A, C) for a tP/tI/hP/hR lattice: returns (M, fraction indexed, n_calc / N, c/a, extra):
    ``extra`` is the cell's (log10 M, fraction) at ``TOL_WIDE``, and for hP also under the hhl and
    h0l c-glide conditions (``planar_tables``) at ``TOL_2THETA``. ``cell``: receives the refined
    cell (``keep_cell``).

    Trials: every pair of the first four peaks assigned to every ordered pair of low-index lines
    (``_low_lines``), solved for (A, C)."""
    tables = planar_tables(kind)
    lines = _low_lines(kind)
    i, j = np.triu_indices(min(q.size, 4), 1)
    a, b = np.meshgrid(np.arange(len(lines)), np.arange(len(lines)), indexing="ij")
    a, b = a[a != b], b[a != b]
    (m1, l1), (m2, l2) = lines[a].T, lines[b].T                  # (n_pairs_of_lines,)
    det = m1 * l2 - m2 * l1
    ok = det != 0
    m1, l1, m2, l2, det = m1[ok], l1[ok], m2[ok], l2[ok], det[ok]
    q1, q2 = q[i][:, None], q[j][:, None]
    A = (q1 * l2 - q2 * l1) / det                                 # Cramer's rule, (peak pairs, lines)
    C = (m1 * q2 - m2 * q1) / det
    P = np.c_[A.ravel(), C.ravel()]
    q_max = q[-1] * 1.01

    def valid(p, q_max):   # the tables reach INDEX_MAX: no line up to q_max may lie beyond them
        return p[0] * tables[0][-1] > q_max and p[1] * L_MAX**2 > q_max
    P = P[(P[:, 0] > 1e-4) & (P[:, 1] > 1e-4) & (P[:, 0] * tables[0][-1] > q_max)
          & (P[:, 1] * L_MAX**2 > q_max)]
    P = unique_rows(np.round(P, 6))
    score = lambda P, q, t, qm, **kw: _score_planar(P, q, t, tables, qm, **kw)  # noqa: E731
    M, f, n, p, z = search(P, q, slope, score, valid, first=FIRST)
    keep_cell(cell, M, f, p, z)
    extra = _rescore(score, p, z, q, slope)
    if kind == "hP":
        for cond in ("hP-hhl", "hP-h0l"):
            t = planar_tables(cond)
            extra += _rescore(lambda P, q, tl, qm, t=t, **kw: _score_planar(P, q, tl, t, qm, **kw), p, z, q, slope,
                              TOL_2THETA)
    return M, f, n, (0.0 if p is None else float(np.sqrt(p[0] / p[1]))), extra


@lru_cache(maxsize=None)
def _low_lines(kind: str) -> np.ndarray:
    """(m, l²) of the allowed lines with m ≤ 4 and l ≤ 2 (3 for hR, whose first 00l line is 003):
    what the first peaks are assumed to be."""
    tables = planar_tables(kind)
    return np.array([(m, l * l) for l in range(4 if kind == "hR" else 3) for m in tables[l] if m <= 4],
                    float)


def fit_cubic(q, slope, centering: str, cell: dict | None = None):
    """Best A (Q = A·(h² + k² + l²)) for a P, I or F cubic lattice: (M, fraction indexed, n_calc / N,
    (log10 M, fraction) at ``TOL_WIDE``). ``cell``: receives the refined cell (``keep_cell``)."""
    table = cubic_table(centering)
    q_max = q[-1] * 1.01
    A = (q[:4, None] / table[None, :6]).ravel()
    A = A[A * table[-1] > q_max][:, None]
    score = lambda P, q, t, qm, **kw: _score_cubic(P, q, t, table, qm, **kw)  # noqa: E731
    M, f, n, p, z = search(A, q, slope, score, lambda p, q_max: p[0] * table[-1] > q_max)
    keep_cell(cell, M, f, p, z)
    return M, f, n, _rescore(score, p, z, q, slope)


# Orthorhombic trials, two kinds. Axial: two axes from the first peaks taken as h00 / 0k0 lines
# (n = 1, 2), the third from a later peak taken as one of the low-index lines ``_MIXED``. Three-line
# (TREOR's way): every three of the first ``ORTHO_FIRST`` peaks taken as every three lines of ``_BASE``,
# solved for (A, B, C). Systematic absences often hide the axial lines of one or two axes among the
# first peaks (Pbca, P2₁2₁2₁ with a long axis: the first lines are 00l and 0kl with even indices);
# such trials then give a cell halved along some axes, so the best are also tried doubled along
# every subset of axes (``_DOUBLINGS``) before refinement.
_MIXED = np.array([(0, 0, 1), (1, 0, 1), (0, 1, 1), (1, 1, 1), (0, 0, 2), (1, 0, 2), (0, 1, 2),
                   (2, 0, 1), (0, 2, 1)], float)
_BASE = np.array([(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1),
                  (2, 0, 0), (0, 2, 0), (0, 0, 2)], float)
_DOUBLINGS = np.array(list(product((1.0, 0.25), repeat=3)))
ORTHO_MAX = 16      # largest index along an axis up to the 20th peak (cells ≲ 16 d-spacings long;
                    # 10 misses the long axes of many organic cells)
ORTHO_FIRST = 6     # peaks the three-line trials are drawn from
ORTHO_KEEP = 16     # trials kept (each then doubled 8 ways) after ranking on the first peaks
# Zone trials (feature version 6): the first peak taken as an axial line 00l (l = 1 or 2), the other
# two parameters solved from two of the next ``ZONE_PEAKS`` peaks taken as any two lines hkl with
# h, k ≤ 2 and l ≤ ``ZONE_L``. Long-axis cells with screw axes (P2₁2₁2₁, Pbca, Pna2₁: most organic
# orthorhombic crystals) show one axial series (002, 004, …) and then mixed lines such as 013 or 112
# among their first peaks, which neither the axial nor the three-line trials reach. With the
# completion and the line limit below, the share of 49 real orthorhombic structures fully indexed as
# oP rose from 0.78 to 0.90 (clean; benchmarks/lattice_diagnostics.py), and under its lab conditions
# from 0.62 to 0.73 in the wide window (0.48 in the narrow one, as before).
ZONE_PEAKS = 5
ZONE_L = 4


@lru_cache(maxsize=None)
def _base_inverses() -> np.ndarray:
    """Inverse of the (h², k², l²) matrix of every non-singular ordered triple of ``_BASE`` lines."""
    H = _BASE[np.array(list(product(range(len(_BASE)), repeat=3)))] ** 2
    return np.linalg.inv(H[np.abs(np.linalg.det(H)) > 0.5])


def _score_ortho(P, q, tol, q_max, want_coef=True):
    """Q = A h² + B k² + C l²: error of each peak to its nearest line, the (h², k², l²) it takes and
    the number of lines (h, k, l ≥ 0) up to q_max, for trial rows P = (A, B, C).

    Each (k, l) pass works only on the trials whose k, l line still lies below q_max: large-cell
    trials need many passes, the others drop out early (same result, ≈ 1.4× faster with zone trials)."""
    A, B, C = P[:, 0], P[:, 1], P[:, 2]
    q = np.broadcast_to(q, (A.size, tol.size))
    best = np.full(q.shape, np.inf)
    coef = np.zeros(q.shape + (3,)) if want_coef else None
    n_calc = np.zeros(A.size)
    k_max = int(np.sqrt(q_max / B.min())) + 1
    l_max = int(np.sqrt(q_max / C.min())) + 1
    for k in range(k_max + 1):
        for l in range(l_max + 1):
            bc = B * k * k + C * l * l
            live = bc <= q_max + tol[-1]
            if not live.any():
                break
            rows = slice(None) if live.all() else np.flatnonzero(live)
            a, bc, qs = A[rows], bc[rows], q[rows]
            rest = qs - bc[:, None]
            h = np.rint(np.sqrt(np.maximum(rest, 0.0) / a[:, None]))
            if k == 0 and l == 0:
                h = np.maximum(h, 1.0)
            err = miss(rest - a[:, None] * h * h, qs, tol)
            cur = best[rows]
            if want_coef:
                better = err < cur
                cc = coef[rows]
                cc[..., 0] = np.where(better, h * h, cc[..., 0])
                cc[..., 1] = np.where(better, k * k, cc[..., 1])
                cc[..., 2] = np.where(better, l * l, cc[..., 2])
                coef[rows] = cc
            best[rows] = np.minimum(cur, err)
            lim = (q_max - bc) / a
            n = np.where(lim >= 0, np.floor(np.sqrt(np.maximum(lim, 0.0))) + 1, 0)
            n_calc[rows] += np.maximum(n - 1, 0) if k == 0 and l == 0 else n
    return best, coef, n_calc


@lru_cache(maxsize=None)
def _zone_pairs() -> tuple[np.ndarray, ...]:
    """(h₁², k₁², l₁², h₂², k₂², l₂², det) of every ordered pair of zone lines whose (h², k²) rows
    are independent, so that A and B follow from two peaks once C is fixed."""
    lines = np.array([(h, k, l) for h in range(3) for k in range(3) for l in range(ZONE_L + 1)
                      if (h, k) != (0, 0)], float) ** 2
    a, b = np.meshgrid(np.arange(len(lines)), np.arange(len(lines)), indexing="ij")
    (h1, k1, l1), (h2, k2, l2) = lines[a.ravel()].T, lines[b.ravel()].T
    det = h1 * k2 - h2 * k1
    ok = np.abs(det) > 0.5
    return tuple(x[ok] for x in (h1, k1, l1, h2, k2, l2, det))


def _zone_trials(q) -> np.ndarray:
    """Trial rows (A, B, C) with C from the first peak as 001 or 002 and (A, B) solved from two of
    the next ``ZONE_PEAKS`` peaks (Cramer's rule, every pair of ``_zone_pairs``)."""
    h1, k1, l1, h2, k2, l2, det = _zone_pairs()
    i, j = np.triu_indices(min(q.size, ZONE_PEAKS + 1), 1)
    keep = i > 0                                              # peak 0 sets C
    i, j = i[keep], j[keep]
    out = []
    for C in (q[0], q[0] / 4.0):
        r1 = q[i][:, None] - C * l1[None, :]                  # (peak pairs, line pairs)
        r2 = q[j][:, None] - C * l2[None, :]
        A = (r1 * k2 - r2 * k1) / det
        B = (h1 * r2 - h2 * r1) / det
        out.append(np.c_[A.ravel(), B.ravel(), np.full(A.size, C)])
    return np.concatenate(out)


def _ortho_trials(q) -> np.ndarray:
    """Axial, three-line and zone trial rows (A, B, C), each sorted (the axes are interchangeable)."""
    axial = np.unique(np.r_[q[:6], q[:6] / 4.0])
    i, j = np.triu_indices(axial.size, 1)
    peaks = np.arange(min(q.size, 6))
    A = np.repeat(axial[i], peaks.size * len(_MIXED))
    B = np.repeat(axial[j], peaks.size * len(_MIXED))
    jj = np.tile(np.repeat(peaks, len(_MIXED)), i.size)
    h, k, l = _MIXED[np.tile(np.arange(len(_MIXED)), i.size * peaks.size)].T
    C = (q[jj] - A * h * h - B * k * k) / (l * l)
    three = np.array(list(combinations(range(min(q.size, ORTHO_FIRST)), 3)))
    P = np.r_[np.c_[A, B, C], np.einsum("aij,tj->tai", _base_inverses(), q[three]).reshape(-1, 3),
              _zone_trials(q)]
    return np.sort(P[(P > 1e-5).all(axis=1)], axis=1)


def fit_ortho(q, slope, cell: dict | None = None):
    """Best (A, B, C) for a primitive orthorhombic lattice: returns (M, fraction indexed, n_calc / N,
    (log10 M, fraction) at ``TOL_WIDE``).
    Centred lattices index as primitive ones (with more spare lines, so a lower M). ``cell``:
    receives the refined cell (``keep_cell``)."""
    M, f, n, p, z = ortho_search(q, slope)
    keep_cell(cell, M, f, p, z)
    return M, f, n, _rescore(_score_ortho, p, z, q, slope)


ORTHO_REFINE = 2 * N_REFINE    # trials refined by ``search``
# At most this many lines per peak (feature version 6): with axes up to ``ORTHO_MAX`` d-spacings long, a
# cell large enough indexes any 20 peaks. On the real hold-out, oP cells that index every peak of an
# orthorhombic pattern have ≤ 6 lines per peak; the cells that index every peak of a monoclinic or
# triclinic one mostly have 7–37 (and M < 10).
ORTHO_LINES = 6
_COMPLETE_IDX = np.array([(u, v, n) for u in range(3) for v in range(3) for n in (1, 2)], float)


def _complete(top, q, slope, q_max, fits):
    """Dominant zones: when one axis is short (a stacking axis of 3.5–4.5 Å), the first peaks are all
    h0l lines and a trial fits them with any B. Each kept trial's first unindexed peak is taken as a
    line with index 1 or 2 along one axis and up to 2 along the others, which sets that axis anew;
    the best ``ORTHO_KEEP`` candidates, ranked on every peak, join the kept trials."""
    loose = slope * TOL_LOOSE
    err, _, _ = _score_ortho(top, q, loose, q_max, want_coef=False)
    unindexed = err > 1.0
    has = unindexed.any(axis=1)
    if not has.any():
        return top
    base = top[has]
    qj = q[np.argmax(unindexed[has], axis=1)]                         # first unindexed peak per trial
    out = []
    for x in range(3):
        o1, o2 = [i for i in range(3) if i != x]
        u, v, n = _COMPLETE_IDX.T
        new = (qj[:, None] - base[:, o1, None] * u * u - base[:, o2, None] * v * v) / (n * n)
        rows = np.repeat(base, new.shape[1], axis=0)
        rows[:, x] = new.ravel()
        out.append(rows)
    C = np.sort(np.concatenate(out), axis=1)
    C = fits(C[(C > 1e-5).all(axis=1)])
    if C.shape[0] == 0:
        return top
    C = unique_rows(np.round(C, 6))
    e, _, n_calc = _score_ortho(C, q, loose, q_max, want_coef=False)
    return np.r_[top, C[np.argsort(-_rank(e, loose, n_calc, q_max))[:ORTHO_KEEP]]]


def ortho_search(q, slope, lines: int | None = None, select=None,
                 max_index: int = ORTHO_MAX, keep: int = ORTHO_KEEP):
    """``fit_ortho``'s search: (M, fraction, n_calc / N, refined (A, B, C) or None, zero shift).
    ``lines``: the lines-per-peak cap (``ORTHO_LINES`` by default); ``select``: as for ``search``;
    ``max_index``: the largest index along an axis; ``keep``:
    trials kept after ranking on the first peaks."""
    q_max = q[-1] * 1.01
    n_max = (ORTHO_LINES if lines is None else lines) * q.size

    def small(P):        # lines up to q_max, about: an octant of the ellipsoid A h² + B k² + C l² ≤ q_max
        return np.pi / 6.0 * q_max**1.5 / np.sqrt(np.prod(P, axis=-1)) <= n_max

    def fits(P):
        return P[(np.sqrt(q_max / P).max(axis=1) <= max_index) & small(P)]

    def valid(p, q_max):
        return bool((p > 1e-5).all() and np.sqrt(q_max / p).max() <= max_index and small(p))
    P = unique_rows(np.round(fits(_ortho_trials(q)), 6))
    if P.shape[0] == 0:
        return 0.0, 0.0, 0.0, None, 0.0
    top = _complete(rank_first(P, q, slope, _score_ortho, keep), q, slope, q_max, fits)
    P = unique_rows(np.round(np.sort(fits((top[:, None, :] * _DOUBLINGS[None]).reshape(-1, 3)), axis=1), 7))
    return search(P, q, slope, _score_ortho, valid, keep=ORTHO_REFINE, select=select)


CUBIC = ("P", "I", "F")
PLANAR = ("tP", "tI", "hP", "hR")


FAMILIES = (*(f"c{c}" for c in CUBIC), *PLANAR, "oP")
# Column of each family's fraction indexed (its log10 M is the one before), of the same cell's
# fraction in the wide window (log10 M before it), and of the hP cell under the absence conditions
# (log10 M, fraction): the layout lattice_features writes, for readers of the features.
FRACTION = dict(zip(FAMILIES, (int(c) + 1 for c in np.cumsum([0] + [3] * len(CUBIC) + [4] * len(PLANAR)))))
_WIDE0 = 3 * len(CUBIC) + 4 * len(PLANAR) + 3
WIDE_FRACTION = {k: _WIDE0 + 2 * i + 1 for i, k in enumerate(FAMILIES)}
ABSENCE = {"hhl": (_WIDE0 + 2 * len(FAMILIES), _WIDE0 + 2 * len(FAMILIES) + 1),
           "h0l": (_WIDE0 + 2 * len(FAMILIES) + 2, _WIDE0 + 2 * len(FAMILIES) + 3)}
N_FEATURES = _WIDE0 + 2 * len(FAMILIES) + 4 + 1


def lattice_features(two_theta: np.ndarray, wavelength: float, cells: dict | None = None) -> np.ndarray:
    """For each of cP, cI, cF: log10 M, fraction indexed, lines per peak; for tP, tI, hP, hR the same
    plus c/a; for oP the first three; then each family's best cell at ``TOL_WIDE`` (log10 M,
    fraction; same order); the hP cell under the hhl and h0l c-glide conditions (log10 M, fraction
    each); then the number of peaks. Zeros when fewer than 4 peaks. ``cells``: a dict that receives each family's refined cell under its name in
    ``FAMILIES`` (``keep_cell``; families without a cell are left out)."""
    out = np.zeros(N_FEATURES, dtype=np.float32)
    two_theta = np.sort(np.asarray(two_theta, float))[:N_OBS]
    out[-1] = two_theta.size
    if two_theta.size < 4:
        return out
    q, slope = peaks_q(two_theta, wavelength)
    slots = {k: ({} if cells is not None else None) for k in FAMILIES}
    i, wide, absence = 0, [], (0.0,) * 4
    for c in CUBIC:
        M, f, n, w = fit_cubic(q, slope, c, slots[f"c{c}"])
        out[i:i + 3] = (np.log10(max(M, 1e-3)), f, n)
        wide += list(w)
        i += 3
    for kind in PLANAR:
        M, f, n, r, extra = fit_planar(q, slope, kind, slots[kind])
        out[i:i + 4] = (np.log10(max(M, 1e-3)), f, n, r)
        wide += list(extra[:2])
        if kind == "hP":
            absence = extra[2:]
        i += 4
    M, f, n, w = fit_ortho(q, slope, slots["oP"])
    out[i:i + 3] = (np.log10(max(M, 1e-3)), f, n)
    wide += list(w)
    i += 3
    out[i:i + len(wide)] = wide
    out[i + len(wide):i + len(wide) + 4] = absence
    if cells is not None:
        cells.update({k: v for k, v in slots.items() if v})
    return out


def relative_figures(features: np.ndarray, window: str = "narrow") -> np.ndarray:
    """Each family's log10(M·f⁴) (``_rank``'s score, f the fraction indexed) minus the best family's,
    from ``lattice_features`` rows (feature version 7): 0 for the best lattice, and how far behind
    the others are. The crystallographer's rule, the lattice with the fewest spare lines that still
    indexes the pattern, as one column per family. Lattices are nested (a hexagonal lattice is
    metrically C-orthorhombic, a cubic one tetragonal), so a lower lattice often indexes the pattern
    too; the absolute figures alone leave the trees to compare columns they rarely split together.
    Zeros when no family indexes anything. ``window="wide"``: the same from the figures at
    ``TOL_WIDE`` (feature version 8)."""
    X = np.atleast_2d(np.asarray(features, np.float32))
    cols = [(FRACTION if window == "narrow" else WIDE_FRACTION)[k] for k in FAMILIES]
    logm, frac = X[:, [c - 1 for c in cols]], X[:, cols]
    score = np.where(frac > 0, logm + 4.0 * np.log10(np.maximum(frac, 1e-3)), -9.0)
    rel = score - score.max(axis=1, keepdims=True)
    rel[(frac <= 0).all(axis=1)] = 0.0
    return rel.astype(np.float32).reshape(np.shape(features)[:-1] + (len(FAMILIES),))


def absence_gains(features: np.ndarray) -> np.ndarray:
    """log10 M of the hP cell under the hhl and the h0l c-glide conditions minus its log10 M without
    them (feature version 8): positive when the forbidden lines were spare lines (a 6₃ axis or a
    c-glide), negative when peaks sat on them. Zeros when hP indexes nothing."""
    X = np.atleast_2d(np.asarray(features, np.float32))
    hp = X[:, FRACTION["hP"] - 1]
    out = np.stack([X[:, ABSENCE[c][0]] - hp for c in ("hhl", "h0l")], axis=1)
    out[X[:, FRACTION["hP"]] <= 0] = 0.0
    return out.astype(np.float32).reshape(np.shape(features)[:-1] + (2,))

