"""What lattice_fit's trial indexing sees on real structures: per crystal system, how often each
lattice family indexes every picked peak, and the figures that separate look-alike systems.

    python benchmarks/lattice_diagnostics.py CIF_DIR [CIF_DIR ...] [--lab] [--tol-tan K] [--ka2-blend W]
    python benchmarks/lattice_diagnostics.py --data DATA [--n 2000] [--lab]

For each readable CIF (simulated clean, or with ``--lab`` under eval_holdout's lab-condition model):
the first 20 picked peaks are indexed by every family, and the table gives, per true crystal system,
the share fully indexed (fraction indexed = 1) by cP, cI, cF, tP, tI, hP, hR and oP. A classifier can
only tell systems apart where these shares differ. Then, for trigonal and hexagonal structures, the
median log10 M(hP) − log10 M(hR) by lattice: a rhombohedral lattice scores higher as hR (negative),
a primitive hexagonal one as hP (positive), and P-trigonal and hexagonal crystals share their lattice,
so for those the share whose hP cell keeps every peak under the hhl absence condition of a 6₃ axis or
c-glide (00l and hhl only with l even), with how much that raises log10 M. The shares are given at
the indexing tolerance (0.025°) and in the wide window (0.05°) the features also carry.
``--tol-tan K`` tries indexing tolerances widened by 1 + K·tan θ (``indexing.TOL_TAN``; the shipped
features use 0), to see what a tolerance that follows the Kα1/Kα2 blend would give; ``--ka2-blend W``
tries a one-sided window instead: a peak may sit up to W·Q above its line (``indexing.KA2_BLEND``).
``--data DATA`` gives the same tables for ``--n`` val-split crystals of a built data set, rendered as
in training (``--lab``: under the training augmentation's lab conditions): what the classifier
learnt from, beside what it meets.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--lab", action="store_true", help="lab-condition renderings instead of clean ones")
    ap.add_argument("--data", type=Path, help="a built data set's val rows instead of CIFs")
    ap.add_argument("--n", type=int, default=2000, help="val rows of --data (default 2000)")
    ap.add_argument("--tol-tan", type=float, default=0.0, metavar="K",
                    help="widen the indexing tolerances by 1 + K·tan θ (default 0: as shipped)")
    ap.add_argument("--ka2-blend", type=float, default=0.0, metavar="W",
                    help="let a peak sit up to W·Q above its line (default 0: as shipped)")
    args = ap.parse_args(argv)
    if bool(args.dirs) == bool(args.data):
        ap.error("give either CIF folders or --data DATA")
    from crystalmela.errors import CrystalmelaError
    from crystalmela_lattice_fit import indexing
    from crystalmela_lattice_fit.indexing import lattice_features
    FAMILIES, WIDE, HHL = indexing.FRACTION, indexing.WIDE_FRACTION, indexing.ABSENCE["hhl"]
    indexing.TOL_TAN = args.tol_tan
    indexing.KA2_BLEND = args.ka2_blend
    from crystalmela_lattice_fit.plugin import pick_peaks
    from crystalmela.systems import CRYSTAL_SYSTEMS

    source = _data_patterns(args.data, args.n, args.lab) if args.data else _cif_patterns(args.dirs, args.lab)
    rows, wide = defaultdict(list), defaultdict(list)
    ratio, hhl = defaultdict(list), defaultdict(list)
    try:
        items = list(source)
    except CrystalmelaError as exc:
        print(f"--data {args.data}: {exc}", file=sys.stderr)
        return 2
    for system, hm, pattern in items:
        tt = pick_peaks(pattern)
        if tt.size < 4:
            continue
        f = lattice_features(tt, pattern.wavelength)
        rows[system].append([f[c] >= 0.999 for c in FAMILIES.values()])
        wide[system].append([f[c] >= 0.999 for c in WIDE.values()])
        if system in ("trigonal", "hexagonal") and f[FAMILIES["hP"]] >= 0.999:
            lattice = "R" if hm.startswith("R") else "P"
            ratio[system, lattice].append(f[FAMILIES["hP"] - 1] - f[FAMILIES["hR"] - 1])
            hhl[system, lattice].append((f[HHL[1]] >= 0.999, f[HHL[0]] - f[FAMILIES["hP"] - 1]))
    if not rows:
        print(f"no readable crystal with 4 or more peaks under {', '.join(map(str, args.dirs or [args.data]))}",
              file=sys.stderr)
        return 2
    print(f"share of patterns whose first 20 peaks a family indexes in full ({'lab' if args.lab else 'clean'}"
          f"{f'; {len(items)} val rows of {args.data}' if args.data else ''}"
          f"{f'; tolerances x (1 + {args.tol_tan} tan θ)' if args.tol_tan else ''}"
          f"{f'; Kα2 blend window {args.ka2_blend} Q' if args.ka2_blend else ''})")
    for title, table in (("", rows), ("\nthe same, in the wide window (0.05°)", wide)):
        if title:
            print(title)
        print(f"{'system':13s} {'n':>4s} " + " ".join(f"{k:>5s}" for k in FAMILIES))
        for system in CRYSTAL_SYSTEMS:
            if table[system]:
                share = np.mean(table[system], axis=0)
                print(f"{system:13s} {len(table[system]):4d} " + " ".join(f"{v:5.2f}" for v in share))
    print("\nlog10 M(hP) - log10 M(hR), fully hP-indexed trigonal / hexagonal patterns (median, n)")
    for (system, lattice), v in sorted(ratio.items()):
        print(f"{system:10s} {lattice} lattice: {np.median(v):+.2f} (n = {len(v)})")
    print("\nhP cell under the hhl condition: share keeping every peak; median gain in log10 M")
    for (system, lattice), v in sorted(hhl.items()):
        keep, gain = np.array(v).T
        print(f"{system:10s} {lattice} lattice: {keep.mean():.2f}; {np.median(gain):+.2f} (n = {len(v)})")
    return 0


def _cif_patterns(dirs, lab):
    """(crystal system, space-group symbol, pattern) of each readable CIF: clean, or eval_holdout's
    lab-condition model."""
    sys.path.insert(0, str(Path(__file__).parent))
    from eval_holdout import cif_patterns
    for path, crystal, pattern in cif_patterns(dirs, lab):
        yield crystal.crystal_system, crystal.spacegroup.hm, pattern


def _data_patterns(data, n, lab, batch=500):
    """The same for ``n`` seeded val rows of a built data set, rendered as lattice_fit's training
    renders them (``lab``: under the default training augmentation)."""
    import gemmi
    from crystalmela.augment import AugmentSettings
    from crystalmela.systems import CRYSTAL_SYSTEMS
    from crystalmela.training import TrainRequest
    req = TrainRequest(name="lattice_fit", version="-", feature="lattice_fit", dataset="full", data=data,
                       out_dir=data, augment=AugmentSettings() if lab else None, progress=False)
    rset = req.reflections("val")
    idx = np.sort(np.random.default_rng(0).permutation(len(rset))[:n])
    for start in range(0, len(idx), batch):
        chunk = idx[start:start + batch]
        for i, pattern in zip(chunk, req.patterns(rset, chunk)):
            hm = gemmi.find_spacegroup_by_ops(gemmi.symops_from_hall(str(rset.hall[i]))).hm \
                if rset.hall is not None else ""
            yield CRYSTAL_SYSTEMS[int(rset.labels[i])], hm, pattern


if __name__ == "__main__":
    sys.exit(main())
