"""lattice_fit's orthorhombic extinction search beside the shipped oP search: which patterns it then
indexes in full, per true system, on the real hold-out and on a built data set's val rows.

    python benchmarks/ortho_lines.py CIF_DIR [CIF_DIR ...] [--lines 32]
    python benchmarks/ortho_lines.py --data DATA [--n 2000] [--lines 32]

The shipped search caps an oP cell at ``ORTHO_LINES`` lines per peak, which keeps large spurious
cells out and with them real cells whose absences hide most of their lines (Pbca cells with a 28–47 Å
axis). The extinction search (``indexing.extinction_cell``) allows ``--lines`` per peak and longer
axes, and ranks its cells and the shipped search's by M·f⁴ counted over the lines of each common
orthorhombic extinction class. Per system the table gives the share fully indexed with M > 10 by the
shipped search and by the extinction search, the share the extinction search alone indexes so
("rescued": the shipped cell leaves a peak unindexed), and the search times. CIF folders are rendered
as ``eval_holdout.py`` renders them, clean and lab; ``--data`` takes ``--n`` val rows of a built
data set, rendered plain and under the training augmentation (what the classifier learns from). The
rescued orthorhombic CIFs are listed with the class found. A measurement: the shipped features do
not contain the extinction search.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SHOWN = ("orthorhombic", "monoclinic", "triclinic", "tetragonal", "trigonal", "hexagonal", "cubic")


def _sources(args):
    """(condition, name, system, pattern) of every pattern to measure."""
    if args.data:
        from lattice_diagnostics import _data_patterns
        for lab in (False, True):
            for i, (system, _, pattern) in enumerate(_data_patterns(args.data, args.n, lab)):
                yield ("lab-like" if lab else "plain"), f"val row {i}", system, pattern
        return
    from eval_holdout import cif_patterns
    for lab in (False, True):
        for path, crystal, pattern in cif_patterns(args.dirs, lab):
            yield ("lab" if lab else "clean"), path.name, crystal.crystal_system, pattern


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--data", type=Path, help="a built data set's val rows instead of CIFs")
    ap.add_argument("--n", type=int, default=2000, help="val rows of --data (default 2000)")
    ap.add_argument("--lines", type=int, default=None, help="lines per peak the extinction search allows "
                    "(default: indexing.ORTHO_LINES_EXT)")
    args = ap.parse_args(argv)
    if bool(args.dirs) == bool(args.data):
        print("give either CIF folders or --data DATA", file=sys.stderr)
        return 2
    if args.data and not (args.data / "dataset.json").exists():
        print(f"--data {args.data}: not a built data set", file=sys.stderr)
        return 2
    for flag, value in (("--lines", args.lines), ("--n", args.n)):
        if value is not None and value < 1:
            print(f"{flag} {value}: give a positive number", file=sys.stderr)
            return 2
    from crystalmela.errors import CrystalmelaError
    from crystalmela.pattern import PAPER_GRID
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit.plugin import pick_peaks
    default = ix.ORTHO_LINES_EXT
    rows = []
    try:
        if args.lines is not None:
            ix.ORTHO_LINES_EXT = args.lines
        for cond, name, system, pattern in _sources(args):
            try:
                g = pattern.to_grid(PAPER_GRID)
            except CrystalmelaError:
                continue
            tt = np.sort(pick_peaks(g))[:ix.N_OBS]
            if tt.size < 6:
                continue
            q, slope = ix.peaks_q(tt, g.wavelength)
            refined: list = []
            t0 = time.perf_counter()
            M, f, _, _ = ix.fit_ortho(q, slope, refined)
            t1 = time.perf_counter()
            found = ix.extinction_cell(q, slope, refined)
            t2 = time.perf_counter()
            ext = (10 ** found[0][0], found[0][1], found[2]) if found else (0.0, 0.0, "-")
            rows.append((cond, name, system, (M, f), ext, (t1 - t0, t2 - t1)))
    except CrystalmelaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        ix.ORTHO_LINES_EXT = default
    if not rows:
        print(f"no pattern with 6 peaks or more under {', '.join(map(str, args.dirs or [args.data]))}",
              file=sys.stderr)
        return 2
    print(f"extinction search: {args.lines or default} lines per peak, axes up to {ix.ORTHO_MAX_EXT} "
          f"d-spacings (shipped search: {ix.ORTHO_LINES}, {ix.ORTHO_MAX})")
    for cond in dict.fromkeys(r[0] for r in rows):
        R = [r for r in rows if r[0] == cond]
        print(f"{cond}: fully indexed with M > 10, shipped -> extinction search; rescued")
        for system in SHOWN:
            S = [r for r in R if r[2] == system]
            if not S:
                continue
            shipped = np.array([r[3][1] >= 0.999 and r[3][0] > 10 for r in S])
            ext = np.array([r[4][1] >= 0.999 and r[4][0] > 10 for r in S])
            print(f"  {system:13s} n {len(S):4d}  {shipped.mean():.3f} -> {ext.mean():.3f}; "
                  f"rescued {np.mean(ext & ~np.array([r[3][1] >= 0.999 for r in S])):.3f}")
        times = np.array([r[5] for r in R])
        print(f"  mean time: shipped search {times[:, 0].mean() * 1e3:.1f} ms, extinction search "
              f"{times[:, 1].mean() * 1e3:.1f} ms more")
        if not args.data:
            for r in R:
                if r[2] == "orthorhombic" and r[3][1] < 0.999 and r[4][1] >= 0.999 and r[4][0] > 10:
                    print(f"    rescued {r[1][:44]:44s} shipped f {r[3][1]:.2f} M {r[3][0]:.1f} -> M {r[4][0]:.1f} "
                          f"({r[4][2]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
