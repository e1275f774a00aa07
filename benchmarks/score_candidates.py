"""Score candidate models of one feature-based classifier on the real-structure hold-out, alone (no
ensemble, no temperature): top-1 / top-2 and recall per system, clean and lab-like.

    python benchmarks/score_candidates.py CIF_DIR [CIF_DIR ...] --model lattice_fit \
        --candidates shipped DIR [DIR ...] [--dataset full] [--cache F.npz] [--mean]

A candidate is a model folder written by ``crystalmela train --out DIR`` (DIR/<dataset>), or
``shipped`` for the installed model. The hold-out is rendered as ``eval_holdout.py`` renders it and
each pattern's features are computed once for all candidates (``--cache`` keeps them between runs;
a cache from other CIF folders, another extractor version or other preprocessing is refused, not
reused; a change to the simulator or to ``eval_holdout.py``'s lab model is not detected, so delete
the cache after one).
``--mean`` also scores the mean of the candidates' probabilities. Faster than ``eval_holdout.py
--models-root`` when only one classifier changes; the ensemble's figures still come from that.
``compare_models.py`` scores trainings on the same synthetic val rows instead.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_holdout import cif_patterns  # noqa: E402  (same renderings as the ensemble's figures)


def _features(dirs, spec, registry, pre, cache: Path | None):
    from crystalmela.errors import CrystalmelaError
    from crystalmela.preprocess import preprocess
    key = (f"{spec.feature}:{registry.feature(spec.feature).version}:{pre.model_dump_json()}:"
           f"{','.join(sorted(map(str, dirs)))}")
    if cache is not None and cache.exists():
        try:
            z = np.load(cache, allow_pickle=False)
            made_for, X, y, lab = str(z["key"]), z["X"], z["y"], z["lab"]
        except (OSError, ValueError, KeyError) as exc:
            raise CrystalmelaError(f"--cache {cache}: not a cache this script wrote ({exc})") from None
        if made_for != key:
            raise CrystalmelaError(f"--cache {cache}: made for {made_for}, not {key}; give another file")
        return X, y, lab
    extract = registry.feature(spec.feature).extract
    X, y, lab = [], [], []
    for is_lab in (False, True):
        for _, crystal, pattern in cif_patterns(dirs, is_lab):
            try:
                on_grid = pattern.to_grid(spec.grid)
            except CrystalmelaError:       # nothing on the grid (eval_holdout.py skips it too)
                continue
            X.append(np.asarray(extract(preprocess(on_grid, pre))))
            y.append(crystal.crystal_system)
            lab.append(is_lab)
    X, y, lab = np.array(X), np.array(y), np.array(lab)
    if cache is not None:
        np.savez(cache, X=X, y=y, lab=lab, key=np.array(key))
    return X, y, lab


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--model", required=True, help="a feature-based classifier, e.g. lattice_fit")
    ap.add_argument("--candidates", nargs="+", required=True, metavar="DIR|shipped")
    ap.add_argument("--dataset", default="full")
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--mean", action="store_true")
    args = ap.parse_args(argv)
    from crystalmela.errors import CrystalmelaError
    from crystalmela.plugins import get_registry
    from crystalmela.systems import CRYSTAL_SYSTEMS
    twice = sorted({c for c in args.candidates if args.candidates.count(c) > 1})
    if twice:
        print(f"--candidates: {', '.join(twice)} given twice", file=sys.stderr)
        return 2
    registry = get_registry()
    try:
        spec = registry.classifier(args.model)
        models = {c: registry.model(args.model, args.dataset) if c == "shipped"
                  else registry.adapt(args.model, args.dataset, spec.load_dir(Path(c) / args.dataset))
                  for c in args.candidates}
    except CrystalmelaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from crystalmela.calibration import preprocess_of
    pres = {preprocess_of(m).model_dump_json() for m in models.values()}
    if len(pres) > 1:
        print("the candidates were trained with different preprocessing; score them apart", file=sys.stderr)
        return 2
    if spec.feature == "profile":
        print(f"{args.model} reads the profile, not features; use eval_holdout.py --models-root", file=sys.stderr)
        return 2
    try:
        X, names, lab = _features(args.dirs, spec, registry, preprocess_of(next(iter(models.values()))), args.cache)
    except CrystalmelaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if len(X) == 0:
        print(f"no readable CIF under {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 2
    y = np.array([CRYSTAL_SYSTEMS.index(n) for n in names])
    probs = {c: np.asarray(m.predict_proba(X)) for c, m in models.items()}
    if args.mean and len(probs) > 1:
        probs["mean of the candidates"] = np.mean(list(probs.values()), axis=0)
    print("recall per system: " + " ".join(s[:5] for s in CRYSTAL_SYSTEMS))
    for c, P in probs.items():
        parts = []
        for cond, k in (("clean", ~lab), ("lab", lab)):
            p, t = P[k], y[k]
            top1 = (p.argmax(1) == t).mean()
            top2 = (np.argsort(-p, axis=1)[:, :2] == t[:, None]).any(axis=1).mean()
            rec = " ".join(f"{((p.argmax(1) == t) & (t == i)).sum()}/{(t == i).sum()}" for i in range(7))
            parts.append(f"{cond} {top1:.3f} / {top2:.3f} ({rec})")
        print(f"{c}: " + " | ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
