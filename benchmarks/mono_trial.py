"""An experiment towards monoclinic indexing (not yet in lattice_fit's features): does a monoclinic
cell index the peaks of monoclinic patterns, and not those of triclinic ones?

    python benchmarks/mono_trial.py CIF_DIR [CIF_DIR ...] [--lab] [--seeded]

Q = A h² + B k² + C l² + D hl (b unique) plus a zero shift. Trials as TREOR makes them: every four of
the first five peaks assigned to every ordered four of twelve low-index lines (``BASE``, both signs of
hl), solved for (A, B, C, D); the best 24 on the first ten peaks are refined by lattice_fit's own
search (``indexing._search``). ``--seeded`` tries the first idea instead: refining from the best
orthorhombic cell with seven starting values of cos β* (spurious fits; see docs/models.md).
Per true system (monoclinic split at β within 5° of 90°) the table gives the share fully indexed by
oP and by mP, by mP but not oP, the median log10 M of each, and the share with every peak indexed
and M > 10; then the mP search's mean time a pattern.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

COS_BETA = np.array([0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3])   # starting |cos β*|
AXIS_MAX = 10       # largest index along an axis up to the last peak: lattice_fit's ORTHO_MAX when the
                    # figures in docs/models.md were measured (it is 16 since feature version 6)


def score_mono(P, q, tol, q_max, want_coef=True):
    """lattice_fit's scorer contract for monoclinic rows P = (A, B, C, D): each peak's error to its
    nearest line (h any sign, k ≥ 0, l ≥ 0; h ≥ 0 when l = 0) in tolerances, the (h², k², l², hl)
    taken, and the number of distinct-index lines up to q_max."""
    from crystalmela_lattice_fit.indexing import _miss
    A, B, C, D = P.T
    q = np.broadcast_to(q, (A.size, tol.size))
    best = np.full(q.shape, np.inf)
    coef = np.zeros(q.shape + (4,)) if want_coef else None
    n_calc = np.zeros(A.size)
    c_eff_all = np.maximum(C - D * D / (4 * A), 1e-9)        # the smallest Q of a line with this l, per l²
    k_max = int(np.sqrt(q_max / B.min())) + 1
    l_max = int(np.sqrt(q_max / c_eff_all.min())) + 1
    for k in range(k_max + 1):
        for l in range(l_max + 1):
            live = B * k * k + c_eff_all * l * l <= q_max + tol[-1]
            if not live.any():
                break
            # as lattice_fit's _score_ortho: only the trials with a line of this k, l in range
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
                err = _miss(qs - (a[:, None] * h * h + c0[:, None] + d[:, None] * h * l), qs, tol)
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


def fit_mono(q, slope, p_ortho):
    """(M, fraction indexed, lines per peak, (A, B, C, D), zero shift) of the best refined mP cell."""
    from crystalmela_lattice_fit import indexing as ix
    if p_ortho is None:
        return 0.0, 0.0, 0.0, None, 0.0

    def valid(p, q_max):
        A, B, C, D = p
        return bool((p > 1e-5).all() and 4 * A * C > D * D * 1.0001 and
                    np.sqrt(q_max / np.array([A, B, C - D * D / (4 * A)])).max() <= AXIS_MAX * 1.5)
    rows = [(a, p_ortho[u], c, 2 * cs * np.sqrt(a * c))
            for u in range(3) for a, c in [[p_ortho[i] for i in range(3) if i != u]] for cs in COS_BETA]
    P = np.array(rows)
    return ix._search(P, q, slope, score_mono, valid, keep=len(P))


BASE = np.array([(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1), (-1, 0, 1), (1, 1, 1),
                 (-1, 1, 1), (2, 0, 0), (0, 0, 2), (0, 2, 0)], float)
FOUR_FIRST = 5      # peaks the four-line trials are drawn from
FOUR_KEEP = 24      # trials refined


@lru_cache(maxsize=None)
def _four_line_inverses() -> np.ndarray:
    """Inverse of the (h², k², l², hl) matrix of every non-singular ordered four of ``BASE``."""
    from itertools import combinations, permutations
    rows = np.c_[BASE[:, 0] ** 2, BASE[:, 1] ** 2, BASE[:, 2] ** 2, BASE[:, 0] * BASE[:, 2]]
    H = rows[np.array([p for c in combinations(range(len(BASE)), 4) for p in permutations(c)])]
    return np.linalg.inv(H[np.abs(np.linalg.det(H)) > 0.5])


def fit_mono_four_line(q, slope):
    """(M, fraction indexed, lines per peak, (A, B, C, D), zero shift) of the best mP cell from
    four-line trials. D ≥ 0 (h → −h turns one sign into the other)."""
    from itertools import combinations
    from crystalmela_lattice_fit import indexing as ix
    q_max = q[-1] * 1.01
    quads = np.array(list(combinations(range(min(q.size, FOUR_FIRST)), 4)))
    P = np.einsum("aij,tj->tai", _four_line_inverses(), q[quads]).reshape(-1, 4)
    P[:, 3] = np.abs(P[:, 3])

    def ok(P, q_max):                                         # valid(), on rows at once
        A, B, C, D = np.atleast_2d(P).T
        with np.errstate(divide="ignore", invalid="ignore"):
            axes = q_max / np.c_[A, B, C - D * D / (4 * A)]
            return ((np.atleast_2d(P) > 1e-5).all(axis=1) & (4 * A * C > D * D * 1.0001)
                    & (np.sqrt(axes).max(axis=1) <= AXIS_MAX))

    def valid(p, q_max):
        return bool(ok(p, q_max)[0])
    P = P[ok(P, q_max)] if len(P) else P
    P = ix._unique_rows(np.round(P, 6))
    if len(P) == 0:
        return 0.0, 0.0, 0.0, None, 0.0
    k = min(ix.FIRST, q.size)
    q_first = q[k - 1] + slope[k - 1] * ix.TOL_2THETA
    loose = slope[:k] * ix.TOL_LOOSE
    err, _, n_calc = score_mono(P, q[:k], loose, q_first, want_coef=False)
    top = P[np.argsort(-ix._rank(err, loose, n_calc, q_first))[:FOUR_KEEP]]
    return ix._search(top, q, slope, score_mono, valid, keep=len(top))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--lab", action="store_true", help="eval_holdout's lab-condition renderings")
    ap.add_argument("--seeded", action="store_true", help="refine from the oP cell instead (first idea)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from eval_holdout import lab_pattern
    from crystalmela.errors import CrystalmelaError
    from crystalmela.simulate import simulate
    from crystalmela.structure import StructureError, read_cif
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit.plugin import pick_peaks
    import time
    rng = np.random.default_rng(0)
    res = defaultdict(list)
    spent = 0.0
    for path in sorted(p for d in args.dirs for p in d.rglob("*.cif")):
        try:
            crystal = read_cif(path)[0]
            pattern = lab_pattern(crystal, rng) if args.lab else simulate(crystal)
        except (StructureError, CrystalmelaError):
            continue
        system = crystal.crystal_system
        if system == "monoclinic":
            system += " β≤5°" if np.abs(np.asarray(crystal.cell[3:]) - 90).max() <= 5 else " β>5°"
        tt = np.sort(pick_peaks(pattern))[:ix.N_OBS]
        if tt.size < 6:
            continue
        q, slope = ix.peaks_q(tt, pattern.wavelength)
        Mo, fo, _, po, _ = ix.ortho_search(q, slope)
        t0 = time.perf_counter()
        Mm, fm, _, _, _ = fit_mono(q, slope, po) if args.seeded else fit_mono_four_line(q, slope)
        spent += time.perf_counter() - t0
        res[system].append((np.log10(max(Mo, 1e-3)), fo >= 0.999, np.log10(max(Mm, 1e-3)), fm >= 0.999))
    if not res:
        print(f"no readable crystal with 6 or more peaks under {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 2
    print(f"{'system':18s}    n  oP full  mP full  mP not oP  log10 M oP / mP  mP full, M > 10")
    for system, rows in sorted(res.items()):
        v = np.array(rows, float)
        print(f"{system:18s} {len(v):4d}  {v[:, 1].mean():7.2f}  {v[:, 3].mean():7.2f}  "
              f"{np.mean(v[:, 3] > v[:, 1]):9.2f}  {np.median(v[:, 0]):6.2f} / {np.median(v[:, 2]):5.2f}  "
              f"{np.mean(v[:, 3].astype(bool) & (v[:, 2] > 1)):15.2f}")
    n = sum(len(r) for r in res.values())
    print(f"mP search: {spent / n * 1e3:.1f} ms a pattern (mean of {n}; the oP column is lattice_fit's "
          f"current search, ORTHO_MAX {ix.ORTHO_MAX})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
