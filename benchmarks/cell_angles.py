"""Cell angles and axis ratios of the training crystals against real ones: are near-90° monoclinic and
triclinic cells (pseudo-orthorhombic, pseudo-monoclinic: the hard cases for a metric test), and cells
with one long axis, as common in training as in real structures?

    python benchmarks/cell_angles.py CIF_DIR [CIF_DIR ...] --data DATA [--split train] [--score]

Prints, for the monoclinic β (the angle ≠ 90°) and the triclinic α, β, γ, percentiles and the share
within 2° and 5° of 90°, for the real CIFs and for the built data set's rows (their stored cells);
then, for all systems, the share of cells whose longest axis exceeds 2, 3, 4 and 6 times the shortest.
``--score`` also predicts each real monoclinic structure (clean simulation, installed full models)
and gives the share called monoclinic by the ensemble and by each model, for β within 5° of 90° and
beyond.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _summary(label: str, mono: np.ndarray, tric: np.ndarray) -> None:
    for name, v in (("monoclinic β", mono), ("triclinic α, β, γ", tric)):
        if v.size == 0:
            continue
        off = np.abs(v - 90.0)
        pct = np.percentile(v, [5, 25, 50, 75, 95])
        print(f"{label:10s} {name:18s} n {v.size:6d}  within 2° of 90°: {np.mean(off <= 2):.2f}  within 5°: "
              f"{np.mean(off <= 5):.2f}  percentiles 5/25/50/75/95: " + " / ".join(f"{p:.1f}" for p in pct))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, required=True, help="a built data set (crystalmela dataset build)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--score", action="store_true", help="also score the installed models on the real monoclinic")
    args = ap.parse_args(argv)
    from crystalmela.dataset import load_reflections
    from crystalmela.errors import CrystalmelaError
    from crystalmela.structure import StructureError, read_cif
    from crystalmela.systems import CRYSTAL_SYSTEMS

    mono, tric, scored, ratios = [], [], [], []
    for path in sorted(p for d in args.dirs for p in d.rglob("*.cif")):
        try:
            crystal = read_cif(path)[0]
        except StructureError:
            continue
        angles = np.asarray(crystal.cell[3:], float)
        ratios.append(max(crystal.cell[:3]) / min(crystal.cell[:3]))
        if crystal.crystal_system == "monoclinic":
            mono.append(angles[np.argmax(np.abs(angles - 90.0))])
            if args.score:
                scored.append((abs(mono[-1] - 90.0) <= 5.0, _calls(crystal)))
        elif crystal.crystal_system == "triclinic":
            tric.extend(angles)
    if not mono and not tric:
        print(f"no readable monoclinic or triclinic CIF under {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 2
    try:
        rset = load_reflections(args.data, "full", args.split)
    except CrystalmelaError as exc:
        print(f"--data {args.data}: {exc}", file=sys.stderr)
        return 2
    if rset.cell is None:
        print(f"--data {args.data}: the data set stores no cells", file=sys.stderr)
        return 2
    labels = np.asarray(rset.labels)
    cell = np.asarray(rset.cell)
    m = cell[labels == CRYSTAL_SYSTEMS.index("monoclinic"), 3:]
    t = cell[labels == CRYSTAL_SYSTEMS.index("triclinic"), 3:]
    _summary("real", np.array(mono), np.array(tric))
    _summary(f"{args.split}", m[np.arange(len(m)), np.argmax(np.abs(m - 90.0), axis=1)], t.ravel())
    for label, r in (("real", np.array(ratios)), (args.split, cell[:, :3].max(1) / cell[:, :3].min(1))):
        print(f"{label:10s} longest / shortest axis, n {r.size:6d}: share > 2 / 3 / 4 / 6: "
              + " / ".join(f"{np.mean(r > k):.3f}" for k in (2, 3, 4, 6)))
    for near in (True, False):
        rows = [calls for n, calls in scored if n == near]
        if rows:
            print(f"real monoclinic, β {'within' if near else 'beyond'} 5° of 90° (n {len(rows)}): called monoclinic by "
                  + ", ".join(f"{k} {np.mean([r[k] for r in rows]):.2f}" for k in rows[0]))
    return 0


def _calls(crystal) -> dict[str, bool]:
    """Whether the ensemble and each installed full model call ``crystal`` (clean) monoclinic."""
    from crystalmela.predict import predict_pattern
    from crystalmela.simulate import simulate
    r = predict_pattern(simulate(crystal), None, "full")
    return {"ensemble": r.top1 == "monoclinic",
            **{m: max(p, key=p.get) == "monoclinic" for m, p in sorted(r.per_model.items())}}


if __name__ == "__main__":
    sys.exit(main())
