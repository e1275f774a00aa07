"""Metric pseudo-symmetry in the real-structure hold-out: which structures have a lattice of higher
symmetry than their crystal system, so that no method reading peak positions alone can call them?

    python benchmarks/pseudo_symmetry.py CIF_DIR [CIF_DIR ...] [--obliquity 0.05 0.2 1] [--json EVAL.json]

A lattice's metric symmetry is found by Le Page's method (``gemmi.find_lattice_symmetry``: the
two-fold axes of the lattice within an obliquity of δ degrees). A structure is metrically
pseudo-symmetric at δ when that group is larger than its own lattice's: a monoclinic crystal whose
cell is metrically orthorhombic (β = 90.1°, or c·cos β = −a), a P1 crystal with a cubic cell. Its
peaks then sit where the higher lattice puts them, and only intensities and absences tell; at
δ = 0.2° (≈ |β − 90°| for a monoclinic cell) a line splits by at most ≈ 0.0035·tan θ rad of 2θ, under
0.1° up to 2θ = 50°. Trigonal crystals
on a primitive hexagonal lattice are not counted: hP is their lattice.

``--json``: an ``eval_holdout.py --json`` report (which keeps the ensemble's probabilities per
structure); the ensemble's top-1 and top-2 are then given apart on the pseudo-symmetric structures
and on the others, for each condition, with what the whole hold-out would score were every other
structure right (the ceiling of anything that reads peak positions better), and the
pseudo-symmetric ones listed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# rotations in the holohedry of each lattice system (find_lattice_symmetry's group, inversion aside)
ORDER = {1: "triclinic", 2: "monoclinic", 4: "orthorhombic", 8: "tetragonal", 6: "trigonal",
         12: "hexagonal", 24: "cubic"}
OWN = {"triclinic": 1, "monoclinic": 2, "orthorhombic": 4, "tetragonal": 8, "hexagonal": 12, "cubic": 24}


def own_order(system: str, centring: str) -> int:
    """The holohedry order of a crystal's own lattice: a trigonal crystal's is hR's (6) or hP's (12)."""
    if system == "trigonal":
        return 6 if centring == "R" else 12
    return OWN[system]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--obliquity", nargs="+", type=float, default=[0.05, 0.2, 1.0], metavar="DEG")
    ap.add_argument("--json", type=Path, help="an eval_holdout.py --json report to split by pseudo-symmetry")
    args = ap.parse_args(argv)
    import gemmi
    from crystalmela.structure import StructureError, read_cif
    from crystalmela.systems import CRYSTAL_SYSTEMS

    missing = [str(d) for d in args.dirs if not d.is_dir()]
    if missing:
        print(f"pseudo_symmetry: not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = {}
    for path in sorted(p for d in args.dirs for p in d.rglob("*.cif")):
        try:
            crystal = read_cif(path)[0]
        except StructureError:
            continue
        centring = crystal.spacegroup.hm[0]
        cell = gemmi.UnitCell(*crystal.cell)
        metric = [len(gemmi.find_lattice_symmetry(cell, centring, d).sym_ops) for d in args.obliquity]
        rows[str(path.resolve())] = (crystal.crystal_system, own_order(crystal.crystal_system, centring), metric)
    if not rows:
        print("pseudo_symmetry: no readable CIF", file=sys.stderr)
        return 2
    print(f"{len(rows)} structures; metrically of higher symmetry than their own lattice, at obliquity δ:")
    print(f"{'system':14s} {'n':>4s}  " + "  ".join(f"δ={d:<5g}" for d in args.obliquity))
    for system in CRYSTAL_SYSTEMS:
        sel = [r for r in rows.values() if r[0] == system]
        if sel:
            print(f"{system:14s} {len(sel):4d}  " + "  ".join(
                f"{sum(m[i] > own for _, own, m in sel):7d}" for i in range(len(args.obliquity))))
    print("all            " + f"{len(rows):4d}  " + "  ".join(
        f"{sum(m[i] > own for _, own, m in rows.values()):7d}" for i in range(len(args.obliquity))))
    if not args.json:
        return 0
    try:
        report = json.loads(args.json.read_text())
        results = report["results"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"{args.json}: not an eval_holdout.py --json report ({exc})", file=sys.stderr)
        return 2
    per_cond = {}
    for cond, modes in results.items():
        probs = modes.get("calibrated", {}).get("ensemble_per_structure")
        if not probs:
            print(f"{args.json}: no per-structure probabilities (rerun eval_holdout.py --json)", file=sys.stderr)
            return 2
        probs = per_cond[cond] = {str(Path(n).resolve()): p for n, p in probs.items()}
        if not set(probs) & set(rows):
            print(f"{args.json}: none of its structures is under {', '.join(map(str, args.dirs))}", file=sys.stderr)
            return 2
        for i, d in enumerate(args.obliquity):
            split = {True: [], False: []}
            for name, p in probs.items():
                if name not in rows:
                    continue
                system, own, metric = rows[name]
                y = CRYSTAL_SYSTEMS.index(system)
                order = np.argsort(-np.asarray(p))
                split[metric[i] > own].append((order[0] == y, y in order[:2]))
            parts = []
            for pseudo, label in ((False, "others"), (True, "pseudo-symmetric")):
                v = np.array(split[pseudo], bool).reshape(-1, 2)
                parts.append(f"{label} {len(v)}: top-1 {v[:, 0].mean():.3f} / top-2 {v[:, 1].mean():.3f}"
                             if len(v) else f"{label} 0")
            print(f"{cond}, δ={d:g}: ensemble " + "; ".join(parts))
            # what the whole hold-out could reach were every other structure right and the
            # pseudo-symmetric ones scored as now: the ceiling a better reading of peak positions has
            pseudo = np.array(split[True], bool).reshape(-1, 2)
            n = len(split[False]) + len(pseudo)
            if len(pseudo) and n:
                top1, top2 = ((len(split[False]) + pseudo[:, k].sum()) / n for k in (0, 1))
                print(f"  every other structure right: top-1 {top1:.3f} / top-2 {top2:.3f} at most")
    d = args.obliquity[min(1, len(args.obliquity) - 1)]
    i = args.obliquity.index(d)
    print(f"pseudo-symmetric at δ={d:g} (metric lattice → ensemble answer per condition):")
    for name, (system, own, metric) in rows.items():
        if metric[i] > own:
            answers = []
            for cond, probs in per_cond.items():
                p = probs.get(name)
                if p is not None:
                    answers.append(f"{cond} {CRYSTAL_SYSTEMS[int(np.argmax(p))]}")
            print(f"  {Path(name).name[:44]:44s} {system:12s} metric {ORDER.get(metric[i], metric[i])!s:12s} "
                  + ", ".join(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
