"""Real-structure hold-out: simulate real CIFs (never trained on) and score the installed models.

    python benchmarks/eval_holdout.py CIF_DIR [CIF_DIR ...] [--dataset full] [--lab] [--json OUT]
        [--write DIR] [--models-root DIR] [--preprocess STEPS] [--measured FILE=SYSTEM ...]

Each CIF is simulated with the project's simulator on the paper grid (clean), and with ``--lab`` also
under a documented lab-condition model: Cu Kα1+Kα2, FWHM 0.12°, a smooth background (quadratic +
exponential low-angle rise, 5–15 % of the strongest peak), Poisson counting noise at 5,000 counts
for the strongest peak, and a zero shift of ±0.03°. The model is fixed (not drawn from the training
augmentation's ranges, and rendered by a different code path: Pearson VII peaks, ``profiles.render``).

Prints, per model and for the ensemble, top-1, top-2 (each with its 95 % Wilson interval: what the
hold-out's size alone leaves open), balanced accuracy, weighted F1 and expected calibration error,
raw and with each model's fitted temperature (its card's ``calibration``), and for the ensemble its
top-1 and top-2 recall per class and how many answers are flagged unsure and how accurate the sure
ones are; ``--json`` also keeps each structure's system (``labels``) and its probabilities from the
ensemble (``ensemble_per_structure``) and from each model (``per_structure``). "calibrated" is what
``predict`` shows: each model at its temperature, and the ensemble at its own when ``crystalmela
calibrate`` fitted one for exactly these models. ``compare_reports.py`` tells whether two reports
(a candidate's and the shipped models') differ beyond the hold-out's noise.
``--models-root DIR`` scores candidate models in ``DIR/<classifier>/<dataset>/`` (as written by
``crystalmela train --out DIR/<classifier>``) instead of the installed ones. ``--measured F=SYSTEM``
adds a measured pattern file with its known crystal system (printed one by one: too few for rates).
``--write DIR`` also saves every rendering as ``DIR/<condition>/<name>.xy`` with a ``labels.csv``, so
``crystalmela evaluate --patterns`` can score them through the readers like any measured data.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def lab_pattern(crystal, rng):
    from crystalmela.plugin_api.pattern import PAPER_GRID, Pattern
    from crystalmela.simulation.profiles import ProfileSettings, render
    from crystalmela.simulation.simulate import d_min_for
    from crystalmela.simulation.diffraction import reflections
    prof = ProfileSettings(fwhm=0.12, ka2=True)
    refl = reflections(crystal, d_min_for(PAPER_GRID, prof))
    shift = rng.uniform(-0.03, 0.03)
    d = refl.d
    y = render(d, refl.intensity, PAPER_GRID, prof)          # max 1000
    x = PAPER_GRID.two_theta
    y = np.interp(x, x + shift, y)
    t = x / 90.0
    bg = (rng.uniform(0.05, 0.15) * 1000) * (0.6 + 0.4 * (1 - t) ** 2 + np.exp(-x / rng.uniform(3, 8)))
    counts = rng.poisson((y + bg) * 5.0) / 5.0
    return Pattern(x, counts, wavelength=PAPER_GRID.wavelength, reader="simulated-lab")


def cif_patterns(dirs, lab: bool):
    """(path, crystal, pattern) of each readable CIF under ``dirs``, in name order: simulated clean,
    or under ``lab_pattern`` with one generator seeded 0 (the diagnostics scripts' renderings). A CIF
    whose clean rendering has nothing on the paper grid is skipped before any lab draw, as ``main``
    skips it, so both give the same lab renderings (until 2026-12-01 the lab ones here drew for it
    too, and every later structure's lab rendering differed from ``main``'s)."""
    from crystalmela.plugin_api.errors import CrystalmelaError
    from crystalmela.plugin_api.pattern import PAPER_GRID
    from crystalmela.simulation.simulate import simulate
    from crystalmela.simulation.structure import StructureError, read_cif
    rng = np.random.default_rng(0)
    for path in sorted(p for d in dirs for p in Path(d).rglob("*.cif")):
        try:
            crystal = read_cif(path)[0]
            pattern = simulate(crystal)
            pattern.to_grid(PAPER_GRID)
            if lab:
                pattern = lab_pattern(crystal, rng)
        except (StructureError, CrystalmelaError):
            continue
        yield path, crystal, pattern


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--dataset", default="full")
    ap.add_argument("--lab", action="store_true", help="also score lab-condition renderings")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--write", type=Path, help="save the renderings as .xy files + labels.csv here")
    ap.add_argument("--models-root", type=Path, help="score the models in DIR/<classifier>/<dataset>/")
    ap.add_argument("--preprocess", default="model", help="model (default), none, or e.g. background")
    ap.add_argument("--measured", nargs="*", default=[], metavar="FILE=SYSTEM")
    ap.add_argument("--unsure-below", type=float, default=0.5)
    args = ap.parse_args(argv)
    missing = [str(d) for d in args.dirs if not d.is_dir()]
    if missing:
        print(f"eval_holdout: not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.write:
        for cond in ("clean", "lab"):
            (args.write / cond / "labels.csv").unlink(missing_ok=True)
    from crystalmela.plugin_api.errors import CrystalmelaError
    from crystalmela.evaluation.metrics import classification_metrics, rate_interval
    from crystalmela.plugins import get_registry
    from crystalmela.pipeline.predictor import predict_pattern
    from crystalmela.pipeline.preprocess import parse
    from crystalmela.pipeline.reading import read_pattern
    from crystalmela.simulation.simulate import simulate
    from crystalmela.simulation.structure import StructureError, read_cif
    from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

    measured = []                        # read first: a bad item fails before minutes of scoring
    for item in args.measured:
        file, sep, system = item.rpartition("=")
        if not sep or not file:
            print(f"--measured {item!r}: expected FILE=SYSTEM, e.g. scan.xy=trigonal", file=sys.stderr)
            return 2
        if system not in CRYSTAL_SYSTEMS:
            print(f"--measured {item!r}: {system!r} is not a crystal system (one of "
                  f"{', '.join(CRYSTAL_SYSTEMS)})", file=sys.stderr)
            return 2
        try:
            measured.append((file, system, read_pattern(file)))
        except CrystalmelaError as exc:
            print(f"--measured: {exc}", file=sys.stderr)
            return 2
    registry = get_registry()
    models = sorted(registry.classifiers)
    if args.models_root:
        for m in models:                 # a classifier without a folder there keeps its installed model
            folder = args.models_root / m / args.dataset
            if folder.is_dir():
                registry.use_model(m, args.dataset, registry.classifier(m).load_dir(folder))
                print(f"{m}: candidate model {folder}")
    pre = None if args.preprocess == "model" else parse(args.preprocess)
    rng = np.random.default_rng(0)
    conditions = ["clean"] + (["lab"] if args.lab else [])
    modes = ("raw", "calibrated")
    probs = {(c, k): {m: [] for m in [*models, "ensemble"]} for c in conditions for k in modes}
    labels, names, skipped = [], [], 0

    def run(pattern, calibrate):
        return predict_pattern(pattern, models, args.dataset, registry=registry, preprocess=pre,
                               calibrate=calibrate)

    for path in sorted(p for d in args.dirs for p in d.rglob("*.cif")):
        try:
            crystal = read_cif(path)[0]
        except StructureError:
            skipped += 1
            continue
        try:
            preds, patterns = {}, {}
            for cond in conditions:
                pattern = simulate(crystal) if cond == "clean" else lab_pattern(crystal, rng)
                patterns[cond] = pattern
                for k in modes:
                    preds[cond, k] = run(pattern, k == "calibrated")
        except CrystalmelaError as exc:  # e.g. no reflection below 90°
            print(f"skipped {path.name}: {exc}")
            skipped += 1
            continue
        labels.append(CRYSTAL_SYSTEMS.index(crystal.crystal_system))
        names.append(str(path))
        if args.write:
            for cond, pattern in patterns.items():
                folder = args.write / cond
                folder.mkdir(parents=True, exist_ok=True)
                name = f"{path.parent.name}__{path.stem}.xy"
                np.savetxt(folder / name, np.c_[pattern.x, pattern.y], fmt="%.3f",
                           header=f"{path.name}: {cond} rendering, Cu Ka1 {pattern.wavelength} A")
                with open(folder / "labels.csv", "a") as fh:
                    fh.write(("file,crystal_system\n" if fh.tell() == 0 else "")
                             + f"{name},{crystal.crystal_system}\n")
        for key, pred in preds.items():
            for m in models:
                probs[key][m].append([pred.per_model[m][c] for c in CRYSTAL_SYSTEMS])
            probs[key]["ensemble"].append([pred.ensemble[c] for c in CRYSTAL_SYSTEMS])
    if not labels:
        print(f"eval_holdout: no readable CIF with reflections below 90° in {', '.join(map(str, args.dirs))} "
              f"({skipped} skipped)", file=sys.stderr)
        return 2
    y = np.array(labels)
    report = {"n": len(y), "skipped_unreadable": skipped, "dataset": args.dataset,
              "models_root": str(args.models_root or "installed"), "preprocess": args.preprocess,
              "per_class": np.bincount(y, minlength=7).tolist(),
              "labels": {n: CRYSTAL_SYSTEMS[c] for n, c in zip(names, labels)}, "results": {}, "measured": []}
    print(f"{len(y)} structures ({skipped} unreadable or empty skipped); models "
          f"{args.models_root or 'installed'} for data set {args.dataset!r}; preprocessing "
          f"{args.preprocess}; classes {dict(zip(CRYSTAL_SYSTEMS, report['per_class']))}")
    for cond in conditions:
        for k in modes:
            res = report["results"].setdefault(cond, {}).setdefault(k, {})
            rows = {m: np.array(v) for m, v in probs[cond, k].items()}
            print(f"\n{cond}, {k}:  model            top-1   top-2   balanced  F1w     ECE     "
                  f"95% interval: top-1         top-2")
            for m, p in rows.items():
                met = classification_metrics(y, p)
                for key in ("accuracy", "top2_accuracy"):
                    met[key + "_interval"] = rate_interval(round(met[key] * len(y)), len(y))
                res[m] = met
                (a, b), (c, d) = met["accuracy_interval"], met["top2_accuracy_interval"]
                print(f"        {m:15s}  {met['accuracy']:.3f}   {met['top2_accuracy']:.3f}   "
                      f"{met['balanced_accuracy']:.3f}     {met['f1_weighted']:.3f}   {met['ece']:.3f}   "
                      f"              {a:.3f}–{b:.3f}   {c:.3f}–{d:.3f}")
            conf = rows["ensemble"].max(axis=1)
            sure = conf >= args.unsure_below
            right = rows["ensemble"].argmax(axis=1) == y
            top2 = (np.argsort(-rows["ensemble"], axis=1)[:, :2] == y[:, None]).any(axis=1)
            res["ensemble_per_structure"] = {n: np.round(p, 4).tolist() for n, p in zip(names, rows["ensemble"])}
            res["per_structure"] = {m: {n: np.round(p, 4).tolist() for n, p in zip(names, r)}
                                    for m, r in rows.items() if m != "ensemble"}
            res["unsure"] = {"threshold": args.unsure_below, "fraction_unsure": float(1 - sure.mean()),
                             "top1_when_sure": float(right[sure].mean()) if sure.any() else None,
                             "top1_when_unsure": float(right[~sure].mean()) if (~sure).any() else None,
                             "top2_when_unsure": float(top2[~sure].mean()) if (~sure).any() else None}
            res["ensemble_recall_per_class"] = {
                "top1": [float(right[y == c].mean()) if (y == c).any() else None for c in range(7)],
                "top2": [float(top2[y == c].mean()) if (y == c).any() else None for c in range(7)]}
            print("        ensemble recall per class, top-1 / top-2: " + ", ".join(
                f"{s[:4]} {a:.2f}/{b:.2f}" for s, a, b in zip(
                    CRYSTAL_SYSTEMS, *res["ensemble_recall_per_class"].values()) if a is not None))
            u = res["unsure"]
            print(f"        ensemble top-1 < {args.unsure_below}: {u['fraction_unsure']:.0%} flagged unsure; "
                  f"top-1 {u['top1_when_sure'] or 0:.3f} when sure, {u['top1_when_unsure'] or 0:.3f} "
                  f"(top-2 {u['top2_when_unsure'] or 0:.3f}) when unsure")
    for file, system, pattern in measured:
        pred = run(pattern, True)
        report["measured"].append({"file": file, "truth": system, "top1": pred.top1, "top2": pred.top2,
                                   "p_truth": pred.ensemble.get(system), "unsure": pred.unsure,
                                   "per_model_top1": {m: max(p, key=p.get) for m, p in pred.per_model.items()}})
        r = report["measured"][-1]
        print(f"measured {Path(file).name}: truth {system}; ensemble {pred.top1} / {pred.top2} "
              f"(p(truth) {r['p_truth']:.3f}{', unsure' if pred.unsure else ''}); per model "
              + ", ".join(f"{m} {t}" for m, t in r["per_model_top1"].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
