"""Does a preprocessing chain help? Train the same forest on a sample of a data set with and without
augmentation, for each chain, and score it on the real-structure hold-out (clean and lab renderings).

    python benchmarks/compare_preprocess.py DATA_DIR CIF_DIR [--rows 30000] [--feature paper_peaks]
        [--preprocess none smooth=9,background ...] [--trees 60]

The chain is applied in training (after rendering, as ``crystalmela train --preprocess`` does) and to
the hold-out patterns, so each line is a model trained and used consistently. The lab renderings are
``eval_holdout.lab_pattern`` (Kα2, FWHM 0.12°, background, Poisson at 5,000 counts, zero shift).
Prints top-1 / top-2 / balanced accuracy per (augmentation, chain).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import bad_input_exits_2  # noqa: E402


@bad_input_exits_2
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("cifs", type=Path)
    ap.add_argument("--rows", type=int, default=30000)
    ap.add_argument("--feature", default="paper_peaks")
    ap.add_argument("--preprocess", nargs="+", default=["none", "smooth=9,background"])
    ap.add_argument("--trees", type=int, default=60)
    args = ap.parse_args(argv)
    from sklearn.ensemble import RandomForestClassifier

    from crystalmela.augment import AugmentSettings
    from crystalmela.dataset.store import load_reflections
    from crystalmela.errors import CrystalmelaError
    from crystalmela.metrics import classification_metrics
    from crystalmela.pattern import PAPER_GRID
    from crystalmela.plugins import get_registry
    from crystalmela.preprocess import parse, preprocess
    from crystalmela.simulate import simulate
    from crystalmela.structure import StructureError, read_cif
    from crystalmela.systems import CRYSTAL_SYSTEMS
    from crystalmela.training import TrainRequest
    from eval_holdout import lab_pattern

    extract = get_registry().feature(args.feature).extract
    n_all = len(load_reflections(args.data, "full", None))
    rows = np.sort(np.random.default_rng(0).choice(n_all, min(args.rows, n_all), replace=False))
    rng = np.random.default_rng(0)
    held: dict[str, list] = {"clean": [], "lab": []}
    y = []
    for path in sorted(args.cifs.rglob("*.cif")):
        try:
            crystal = read_cif(path)[0]
            pats = {"clean": simulate(crystal).to_grid(PAPER_GRID),
                    "lab": lab_pattern(crystal, rng).to_grid(PAPER_GRID)}
        except (StructureError, CrystalmelaError):
            continue
        for k, p in pats.items():
            held[k].append(p)
        y.append(CRYSTAL_SYSTEMS.index(crystal.crystal_system))
    y = np.array(y)
    print(f"{len(rows)} training rows of {args.data}; hold-out {len(y)} structures; feature {args.feature}")
    for aug in ("none", "lab"):
        for chain in args.preprocess:
            settings = parse(chain)
            req = TrainRequest(name="compare", version="0", feature=args.feature, dataset="full",
                               data=args.data, out_dir=args.data, splits={"train": rows}, progress=False,
                               augment=AugmentSettings() if aug == "lab" else None, preprocess=settings)
            t = time.perf_counter()
            X, labels = req.features("train")
            forest = RandomForestClassifier(args.trees, min_samples_leaf=10, max_depth=30, n_jobs=-1,
                                            random_state=0).fit(X, labels)
            line = []
            for cond, pats in held.items():
                F = np.stack([extract(preprocess(p, settings)) for p in pats])
                m = classification_metrics(y, forest.predict_proba(F))
                line.append(f"{cond} {m['accuracy']:.3f} / {m['top2_accuracy']:.3f} / "
                            f"{m['balanced_accuracy']:.3f}")
            print(f"augment {aug:4s} preprocess {chain:22s} ({time.perf_counter() - t:4.0f} s): "
                  + "   ".join(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
