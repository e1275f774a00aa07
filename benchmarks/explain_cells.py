"""How often is the first cell lattice_fit shows (``predict``'s evidence) the crystal's own lattice?

    python benchmarks/explain_cells.py CIF_DIR [CIF_DIR ...] [--lab]

For each readable structure, rendered clean or under eval_holdout's lab model (``cif_patterns``, the
same renderings), the cells ``crystalmela_lattice_fit.cells.ranked`` puts first, read as a lattice
system (a monoclinic or triclinic cell whose lattice is metrically higher reads as that lattice),
against the crystal's own: cubic, hexagonal (hexagonal and trigonal P crystals), rhombohedral
(trigonal R), tetragonal, orthorhombic, monoclinic, triclinic. Per own lattice system: n, the share
whose first cell indexes the pattern (95 % of the peaks with M ≥ 10, not "doubtful"), the share whose
first cell is of the own lattice system, the share whose first cell both indexes the pattern and is
of the own lattice system (a crystallographer's "highest symmetry that indexes" rule applied to
lattice_fit's cells), and the share with the own lattice among the cells shown.
Metric pseudo-symmetry (benchmarks/pseudo_symmetry.py) makes some first cells higher than the
crystal's lattice by right: the peaks cannot tell. The real structures are the hold-out: this
measures what a user is shown, nothing here is fitted.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import bad_input_exits_2  # noqa: E402


def own_lattice(crystal) -> str:
    """The lattice system of a crystal: its crystal system, with trigonal split by centring."""
    import gemmi
    system = crystal.crystal_system
    if system == "trigonal":
        return "rhombohedral" if gemmi.find_spacegroup_by_number(crystal.spacegroup_number).hm[0] == "R" \
            else "hexagonal"
    return system


def reading(row) -> str:
    """The lattice system a shown cell stands for."""
    from crystalmela_lattice_fit.cells import LATTICE
    return row.metric or LATTICE[row.family]


@bad_input_exits_2
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--lab", action="store_true", help="eval_holdout's lab-condition renderings")
    args = ap.parse_args(argv)
    from crystalmela.errors import CrystalmelaError
    from crystalmela.pattern import PAPER_GRID
    from crystalmela_lattice_fit.cells import SHOWN, ranked
    from crystalmela_lattice_fit.plugin import analyse
    from eval_holdout import cif_patterns
    missing = [d for d in args.dirs if not d.is_dir()]
    if missing:
        raise CrystalmelaError(f"{missing[0]}: not a folder")
    res = defaultdict(list)
    for path, crystal, pattern in cif_patterns(args.dirs, args.lab):
        _, cells, _ = analyse(pattern.to_grid(PAPER_GRID))
        rows = ranked(cells)
        own = own_lattice(crystal)
        first = rows[0] if rows else None
        good, is_own = bool(first and first.good), bool(first and reading(first) == own)
        res[own].append((good, is_own, good and is_own, any(reading(r) == own for r in rows[:SHOWN])))
    if not res:
        raise CrystalmelaError(f"no readable structure under {', '.join(map(str, args.dirs))}")
    print(f"{'lab' if args.lab else 'clean'}: the first cell shown against the crystal's own lattice")
    heads = ("first indexes", "first is own", "both", "own among shown")
    print(f"{'lattice':14s}    n  " + "  ".join(heads))
    order = ["cubic", "hexagonal", "rhombohedral", "tetragonal", "orthorhombic", "monoclinic", "triclinic"]
    total = []
    for lat in [*(x for x in order if x in res), "all"]:
        v = res[lat] if lat != "all" else total
        if lat != "all":
            total += v
        print(f"{lat:14s} {len(v):4d}  " + "  ".join(f"{sum(x[i] for x in v) / len(v):{len(h)}.2f}"
                                                    for i, h in enumerate(heads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
