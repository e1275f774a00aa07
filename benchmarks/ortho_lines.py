"""lattice_fit's orthorhombic search with a higher cap on lines per peak: which hold-out patterns it
then indexes in full, per true system (the cap keeps large spurious cells out, and with them large
real cells whose absences hide most of their lines, such as Pbca cells with a 28–47 Å axis).

    python benchmarks/ortho_lines.py CIF_DIR [CIF_DIR ...] [--lines 24] [--absences]

Renders the hold-out as ``eval_holdout.py`` does (clean and lab), runs ``ortho_search`` on each
pattern's peaks at the shipped cap (``ORTHO_LINES``) and at ``--lines``, and prints the share fully
indexed (with M > 10, and at any M) per system, the mean search time, and the orthorhombic patterns
whose indexed fraction changed. ``--absences`` also rescores the cell found at ``--lines`` counting
only the lines an extinction rule allows (P2₁2₁2₁'s axial conditions, or Pbca's zonal ones in each
axis setting; the best M of these and of all P lines): would de Wolff's M then tell a real large
cell from a spurious one? A measurement, not a feature change: the shipped features keep the cap.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_holdout import cif_patterns  # noqa: E402


def _rules() -> dict:
    """Extinction rules as (h, k, l) → allowed, for the orthorhombic groups most organic crystals take."""
    rules = {"P": lambda h, k, l: np.ones(h.shape, bool),
             "P212121": lambda h, k, l: ~(((k == 0) & (l == 0) & (h % 2 == 1)) | ((h == 0) & (l == 0) & (k % 2 == 1))
                                          | ((h == 0) & (k == 0) & (l % 2 == 1)))}
    for perm in itertools.permutations(range(3)):      # Pbca: 0kl k = 2n, h0l l = 2n, hk0 h = 2n
        def allowed(h, k, l, perm=perm):
            x = (h, k, l)
            a, b, c = x[perm[0]], x[perm[1]], x[perm[2]]
            return ~(((a == 0) & (b % 2 == 1)) | ((b == 0) & (c % 2 == 1)) | ((c == 0) & (a % 2 == 1)))
        rules["Pbca[" + "".join("abc"[i] for i in perm) + "]"] = allowed
    return rules


def _absence_m(ix, p, z, q, slope) -> tuple[float, str]:
    """The best M of cell ``p`` (zero shift ``z``) over ``_rules``, brute force over its lines."""
    q_max = q[-1] + slope[-1] * ix.TOL_2THETA
    h, k, l = (x.ravel() for x in np.meshgrid(*(np.arange(int(np.sqrt(q_max / a)) + 2) for a in p), indexing="ij"))
    qc = q - z * slope
    tol = slope * ix.TOL_2THETA
    best = (0.0, "P")
    for name, allowed in _rules().items():
        keep = (h + k + l > 0) & allowed(h, k, l)
        lines = np.unique(np.round(p[0] * h[keep] ** 2 + p[1] * k[keep] ** 2 + p[2] * l[keep] ** 2, 9))
        lines = lines[lines <= q_max]
        err = ix._miss((qc - ix._nearest(lines, qc))[None, :], qc, tol)
        m = float(ix._figure(err, tol, np.array([lines.size]), q_max)[0])
        best = max(best, (m, name))
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--lines", type=int, default=24, help="lines per peak allowed (shipped: ORTHO_LINES)")
    ap.add_argument("--absences", action="store_true", help="also rescore the found cells under extinction rules")
    args = ap.parse_args(argv)
    if args.lines < 1:
        print(f"--lines {args.lines}: give a positive number of lines per peak", file=sys.stderr)
        return 2
    from crystalmela.errors import CrystalmelaError
    from crystalmela.pattern import PAPER_GRID
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit.plugin import pick_peaks
    shipped = ix.ORTHO_LINES
    rows = []
    try:
        for lab in (False, True):
            for path, crystal, pattern in cif_patterns(args.dirs, lab):
                try:
                    g = pattern.to_grid(PAPER_GRID)
                except CrystalmelaError:
                    continue
                tt = np.sort(pick_peaks(g))[:ix.N_OBS]
                if tt.size < 6:
                    continue
                q, slope = ix.peaks_q(tt, g.wavelength)
                res = []
                for cap in (shipped, args.lines):
                    ix.ORTHO_LINES = cap
                    t = time.perf_counter()
                    M, frac, _, p, z = ix.ortho_search(q, slope)
                    res.append((frac, M, time.perf_counter() - t))
                if args.absences:
                    res.append(_absence_m(ix, p, z, q, slope) if p is not None else (0.0, "-"))
                rows.append((lab, path.name, crystal.crystal_system, res))
    finally:
        ix.ORTHO_LINES = shipped
    if not rows:
        print(f"no pattern with 6 peaks or more under {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 2
    print(f"lines per peak {shipped} -> {args.lines}")
    for lab in (False, True):
        R = [r for r in rows if r[0] == lab]
        print("lab" if lab else "clean")
        for system in ("orthorhombic", "monoclinic", "triclinic", "tetragonal"):
            S = [r for r in R if r[2] == system]
            if not S:
                continue
            good = [np.mean([r[3][i][0] >= 0.999 and r[3][i][1] > 10 for r in S]) for i in (0, 1)]
            full = [np.mean([r[3][i][0] >= 0.999 for r in S]) for i in (0, 1)]
            print(f"  {system:13s} n {len(S):3d}  fully indexed, M > 10: {good[0]:.3f} -> {good[1]:.3f}; "
                  f"at any M: {full[0]:.3f} -> {full[1]:.3f}" + (
                      f"; M > 10 with absences: {np.mean([r[3][1][0] >= 0.999 and r[3][2][0] > 10 for r in S]):.3f}"
                      if args.absences else ""))
        print(f"  mean search time {np.mean([r[3][0][2] for r in R]) * 1e3:.1f} -> "
              f"{np.mean([r[3][1][2] for r in R]) * 1e3:.1f} ms")
        for r in R:
            if r[2] == "orthorhombic" and abs(r[3][0][0] - r[3][1][0]) > 1e-9:
                print(f"    {r[1][:44]:44s} fraction {r[3][0][0]:.2f} -> {r[3][1][0]:.2f}, M {r[3][0][1]:.1f} -> "
                      f"{r[3][1][1]:.1f}" + (f" ({r[3][2][1]} {r[3][2][0]:.1f})" if args.absences else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
