"""Command line: a thin layer over the Python API. Expected failures print one line, never a traceback."""
from __future__ import annotations

import argparse
import json
import os
import sys

from crystalmela.plugin_api.errors import CrystalmelaError, settings_problem
from crystalmela.plugin_api.systems import DATASETS
from crystalmela.plugin_api.wavelengths import ANODES_KA1

EXIT_OK, EXIT_NO_MODEL, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("crystalmela")
    except PackageNotFoundError:
        return "unknown"


def _port(text: str) -> int:
    """A TCP port for --port: argparse reports anything else as a usage error (exit 2)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 0–65535, got {text!r}")
    return port


def _at_least(minimum: int):
    """An argparse type for a count that must be at least ``minimum`` (workers, folds): 0 must not
    quietly mean "the default"."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number ≥ {minimum}, got {text!r}")
        return value
    return parse


def _parse_weights(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        name, sep, val = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(val)
        except ValueError:
            raise CrystalmelaError(f"--weights: expected NAME=NUMBER[,NAME=NUMBER...], got {item!r}") from None
    return out


def cmd_predict(args) -> int:
    from crystalmela.pipeline.predictor import Predictor, resolve_wavelength
    from crystalmela.pipeline.preprocess import parse as preprocess_parse
    from crystalmela.pipeline.quality import DEFAULT as DEFAULT_QUALITY
    from crystalmela.pipeline.result import format_table

    wl = resolve_wavelength(args.wavelength, args.anode)
    if not 0.0 <= args.unsure_below <= 1.0:
        raise CrystalmelaError(f"--unsure-below {args.unsure_below}: expected a probability in [0, 1]")
    predictor = Predictor(args.models.split(",") if args.models else None, args.dataset,
                          weights=_parse_weights(args.weights),
                          preprocess=None if args.preprocess == "model" else preprocess_parse(args.preprocess),
                          calibrate=not args.no_calibration, unsure_below=args.unsure_below,
                          explain=not args.no_evidence, quality=None if args.no_quality_gate else DEFAULT_QUALITY)
    if args.reader:
        predictor.registry.reader(args.reader)
    status = EXIT_OK
    for i, path in enumerate(args.files):
        try:
            pred = predictor.predict_path(path, reader=args.reader, wavelength=wl)
        except CrystalmelaError as exc:
            status = EXIT_BAD_INPUT
            if args.json:
                print(json.dumps({"path": str(path), "error": str(exc)}), flush=True)
            else:
                print(f"error: {exc}", file=sys.stderr, flush=True)
            continue
        if not pred.ok and status == EXIT_OK:
            status = EXIT_NO_MODEL
        if args.json:
            print(json.dumps(pred.to_json()), flush=True)
        else:
            if i:
                print()
            print(format_table(pred), flush=True)
    return status


def cmd_peaks(args) -> int:
    """The fitted peak list of each file, on the data as measured."""
    from crystalmela.pipeline.predictor import check_path, resolve_wavelength
    from crystalmela.pipeline.reading import read_pattern
    from crystalmela.plugin_api.peaklist import PeakSearchSettings, find_peaks
    from pathlib import Path

    wl = resolve_wavelength(args.wavelength, args.anode)
    settings = PeakSearchSettings(ka2=args.ka2, min_sigma=args.min_sigma)
    if args.out and len(args.files) > 1:
        raise CrystalmelaError("-o/--out takes one file; give one FILE or leave -o out")
    status = EXIT_OK
    for path in args.files:
        try:
            check_path(path)
            peaks = find_peaks(read_pattern(path, reader=args.reader), settings, wavelength=wl)
        except CrystalmelaError as exc:
            status = EXIT_BAD_INPUT
            msg = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            if args.json:
                print(json.dumps({"path": str(path), "error": msg}), flush=True)
            else:
                print(f"error: {msg}", file=sys.stderr, flush=True)
            continue
        text = json.dumps({"path": str(path), **peaks.to_json()}) if args.json else peaks.to_text()
        if args.out:
            Path(args.out).write_text(text + ("\n" if args.json else ""))
            print(f"{len(peaks)} peaks of {path} written to {args.out}", file=sys.stderr)
        else:
            print(text.rstrip("\n"), flush=True)
    return status


def cmd_readers(args) -> int:
    from crystalmela.plugins import get_registry
    reg = get_registry()
    rows = [{"name": r.name, "extensions": list(r.extensions), "plugin": reg.provider[("reader", r.name)],
             "description": r.description} for r in sorted(reg.readers.values(), key=lambda r: r.name)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no readers installed (pip install crystalmela-readers)")
    w = max([len(r["name"]) for r in rows] + [4])
    for r in rows:
        exts = " ".join(r["extensions"]) or "(content only)"
        print(f"{r['name']:<{w}}  {exts:<28}  {r['description']}  [{r['plugin']}]")
    return EXIT_OK


def cmd_plugins(args) -> int:
    from crystalmela.plugins import list_plugins, get_registry
    infos, failures = list_plugins()
    reg = get_registry()
    if args.json:
        print(json.dumps({"plugins": [i.__dict__ for i in infos],
                          "failed": [f.__dict__ for f in failures]}, indent=2))
        return EXIT_OK
    for i in infos:
        provided = [f"{label} {name}" for (label, name), p in sorted(reg.provider.items()) if p == i.name]
        print(f"{i.name}  ({i.distribution or 'not installed'} {i.version or ''})".rstrip())
        print(f"    hooks: {', '.join(i.hooks) or 'none'}")
        if provided:
            print(f"    provides: {', '.join(provided)}")
    if failures:
        print("\nfailed to load:")
        for f in failures:
            src = f" ({f.distribution} {f.version})" if f.distribution else ""
            print(f"  {f.name}{src}: {f.error}")
    return EXIT_OK


def cmd_models(args) -> int:
    from crystalmela.inventory import format_inventory, inventory
    inv = inventory(DATASETS if args.dataset == "all" else (args.dataset,))
    if args.json:
        print(json.dumps(inv.model_dump(), indent=2))
    else:
        print(format_inventory(inv) if inv.models else "no classifier plugins installed")
    return EXIT_NO_MODEL if any(not m.loaded for m in inv.models) else EXIT_OK


def cmd_simulate(args) -> int:
    from crystalmela.plugin_api.pattern import GridSpec
    from crystalmela.pipeline.predictor import resolve_wavelength
    from crystalmela.simulation.profiles import ProfileSettings
    from crystalmela.simulation.simulate import load_crystal, simulate, simulate_reflections, stick_table
    from crystalmela.plugin_api.wavelengths import CU_KA1

    wl = resolve_wavelength(args.wavelength, args.anode) or CU_KA1
    try:
        grid = GridSpec(wavelength=wl, two_theta_min=args.two_theta_min,
                        two_theta_max=args.two_theta_max, step=args.step)
        profile = ProfileSettings(shape=args.shape, fwhm=args.fwhm, pearson_m=args.pearson_m,
                                  ka2=args.ka2)
    except ValueError as exc:  # pydantic's message names the offending option
        raise CrystalmelaError(f"invalid simulation settings: {exc}") from None
    crystal = load_crystal(args.file, args.block)
    notes = crystal.meta.get("notes", [])
    header = [f"crystalmela {_version()} simulate {args.file}" + (f" [data_{crystal.name}]" if crystal.name else ""),
              f"space group {crystal.spacegroup.hm} (No. {crystal.spacegroup_number}), "
              f"{crystal.crystal_system}; formula {crystal.formula_string()}",
              f"wavelength: {wl:.5f} A; profile {profile.shape}, FWHM {profile.fwhm} deg"
              + (", Ka2" if profile.ka2 else "") + ("" if args.adp else "; displacement parameters ignored")]
    header += [f"note: {n}" for n in notes]
    if args.sticks:
        refl = simulate_reflections(crystal, grid, profile=profile, adp=args.adp)
        lines = [f"# {h}" for h in header] + ["# 2theta  I_rel  d  h k l  multiplicity"]
        for tt, inten, d, (h, k, l), m in stick_table(refl, wl, grid.two_theta_max):
            if tt >= grid.two_theta_min:
                lines.append(f"{tt:.5f} {inten:.4f} {d:.6f} {h} {k} {l} {m}")
    else:
        pattern = simulate(crystal, grid, profile=profile, adp=args.adp)
        lines = [f"# {h}" for h in header] + ["# 2theta intensity"]
        lines += [f"{x:.4f} {y:.4f}" for x, y in zip(pattern.x, pattern.y)]
    text = "\n".join(lines) + "\n"
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        from pathlib import Path
        try:
            Path(args.output).write_text(text)
        except OSError as exc:
            raise CrystalmelaError(f"{args.output}: cannot write: {exc.strerror}") from None
        print(f"wrote {args.output} ({len(lines) - len(header) - 1} points)", file=sys.stderr)
    return EXIT_OK


def cmd_dataset_build(args) -> int:
    from crystalmela.dataset import BuildSettings, build
    if not args.synthetic and not args.cif:
        raise CrystalmelaError("nothing to build: give --synthetic N and/or --cif DIR")
    try:
        settings = BuildSettings(synthetic=args.synthetic, organic_fraction=args.organic_fraction,
                                 prior_power=args.prior_power, cell_model=args.cell_model,
                                 sg_draw=args.sg_draw, axis_spread=args.axis_spread, cif_dirs=args.cif or [],
                                 seed=args.seed, chunk_size=args.chunk_size)
    except ValueError as exc:
        option = {f: "--" + f.replace("_", "-") for f in BuildSettings.model_fields} | {"cif_dirs": "--cif"}
        raise CrystalmelaError(f"invalid data set settings: {settings_problem(exc, option)}") from None
    manifest = build(args.output, settings, workers=args.workers, scheduler=args.scheduler,
                     progress=not args.quiet)
    _print_manifest(args.output, manifest)
    return EXIT_OK


def _print_manifest(path, m: dict) -> None:
    print(f"{path}: {m['counts']['full']['n']} structures "
          f"({', '.join(f'{k} {v}' for k, v in m['sources'].items())}); "
          f"{m['bytes'] / 1e6:.1f} MB, {m['bytes_per_structure']} bytes/structure")
    for name in ("full", "organic", "inorganic"):
        c = m["counts"][name]
        per = " ".join(f"{k[:5]} {v}" for k, v in c["per_class"].items())
        print(f"  {name:9s} n={c['n']:<7d} {per}  splits {c['per_split']}")
    if m.get("rejected"):
        print("  rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(m["rejected"].items()))
              + " (details in rejects.csv)")
    run = m.get("last_run")
    if run:
        print(f"  last run: {run['structures_written']} structures in {run['seconds']} s "
              f"({run['structures_per_second']} /s, workers {run['workers']}); "
              f"{run['tasks_skipped']} tasks already done")


def cmd_dataset_info(args) -> int:
    from pathlib import Path
    path = Path(args.path) / "dataset.json"
    if not path.exists():
        raise CrystalmelaError(f"{args.path}: not a built data set (no dataset.json)")
    manifest = json.loads(path.read_text())
    if args.json:
        print(json.dumps(manifest, indent=1))
    else:
        _print_manifest(args.path, manifest)
    return EXIT_OK


def _read_config(text: str | None) -> dict:
    """--config: a named configuration of the model (e.g. paper) or a JSON file of settings."""
    from pathlib import Path
    if not text:
        return {}
    path = Path(text)
    if path.suffix == ".json" or path.exists():
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CrystalmelaError(f"--config {text}: not a readable JSON object ({exc})") from None
        if not isinstance(config, dict):
            raise CrystalmelaError(f"--config {text}: expected a JSON object")
        return config
    return {"name": text}


def cmd_evaluate(args) -> int:
    from pathlib import Path

    from crystalmela.plugins import get_registry

    registry = get_registry()
    models = None if args.model in (None, "all") else [m.strip() for m in args.model.split(",")]
    weights = _parse_weights(args.weights)
    if args.cifs:
        from crystalmela.evaluation.holdout import evaluate_cifs
        from crystalmela.pipeline.predictor import Predictor
        from crystalmela.pipeline.preprocess import parse as preprocess_parse
        if args.data or args.patterns:
            raise CrystalmelaError("--cifs scores the installed models on simulated CIFs; give --data or "
                                   "--patterns in another run")
        predictor = Predictor(models, args.dataset, weights=weights, calibrate=not args.no_calibration,
                              preprocess=None if args.preprocess == "model" else preprocess_parse(args.preprocess))
        report = evaluate_cifs(args.cifs, predictor, lab=args.lab)
        for cond, res in report["conditions"].items():
            _print_report(res, f"{cond} renderings of the CIFs under {', '.join(args.cifs)}", args.output and
                          Path(args.output) / cond)
        return EXIT_OK
    if args.lab:
        raise CrystalmelaError("--lab renders CIFs under lab conditions: give --cifs DIR")
    if args.patterns:
        from crystalmela.evaluation.patterns import evaluate_patterns
        from crystalmela.pipeline.predictor import resolve_wavelength
        if args.data or args.folds is not None:
            raise CrystalmelaError("--patterns scores the installed models; --data/--folds are for cross-validation")
        if not args.labels:
            raise CrystalmelaError("--patterns needs --labels labels.csv (columns file,crystal_system)")
        if not Path(args.patterns).is_dir():
            raise CrystalmelaError(f"--patterns {args.patterns}: not a folder")
        from crystalmela.pipeline.preprocess import parse as preprocess_parse
        report = evaluate_patterns(args.patterns, args.labels, models, args.dataset, weights=weights,
                                   wavelength=resolve_wavelength(args.wavelength, args.anode),
                                   reader=args.reader, progress=not args.quiet,
                                   preprocess=None if args.preprocess == "model" else preprocess_parse(args.preprocess),
                                   calibrate=not args.no_calibration)
    else:
        from crystalmela.evaluation.crossval import cross_validate
        if not args.data:
            raise CrystalmelaError("give --data DATA_DIR (cross-validation on a built data set) or "
                                   "--patterns DIR --labels labels.csv")
        if not (Path(args.data) / "dataset.json").exists():
            raise CrystalmelaError(f"--data {args.data}: not a built data set (run `crystalmela dataset build`)")
        names = models or sorted(n for n, s in registry.classifiers.items() if s.train and s.load_dir)
        config = _read_config(args.config)
        if config and len(names) != 1:
            raise CrystalmelaError("--config applies to one model; give --model NAME with it")
        folds = 10 if args.folds is None else args.folds
        report = cross_validate(names, args.data, args.dataset, folds=folds, seed=args.seed, limit=args.limit,
                                configs={names[0]: config} if config else None, weights=weights,
                                workers=args.workers, scheduler=args.scheduler, progress=not args.quiet)
    _print_report(report, "", args.output)
    return EXIT_OK


def _print_report(report: dict, title: str, output) -> None:
    """An evaluation report as a table (and its files in ``output`` when given)."""
    from crystalmela.evaluation.report import COLUMNS, cell, write_report
    print(f"{report['n']} patterns, data set {report['dataset']}" + (f", {title}" if title else "")
          + (f", {report['folds']}-fold CV (mean and std over folds)" if "folds" in report else ""))
    print(f"  {'model':24s}" + "".join(f"{t:>16s}" for _, t in COLUMNS))
    rows = [*report["per_model"].items(), ("ensemble", report["ensemble"]),
            *((f"dummy {b}", v) for b, v in report.get("baselines", {}).items())]
    for name, m in rows:
        print(f"  {name:24s}" + "".join(f"{cell(m, k):>16s}" for k, _ in COLUMNS))
    ens = report["ensemble"]
    if "accuracy_interval" in ens:
        (a, b), (c, d) = ens["accuracy_interval"], ens["top2_accuracy_interval"]
        print(f"  ensemble 95 % interval: top-1 {a:.3f}–{b:.3f}, top-2 {c:.3f}–{d:.3f}")
    for f in report.get("failed", []):
        print(f"not scored: {f['file']}: {f['error']}", file=sys.stderr)
    if output:
        files = write_report(report, output)
        print(f"report: {', '.join(str(f) for f in files)}")


def _augment_settings(spec: str):
    """``lab`` (the documented default ranges), ``none``, or a JSON file of AugmentSettings fields."""
    from pathlib import Path

    from pydantic import ValidationError

    from crystalmela.simulation.augment import AugmentSettings
    if spec == "none":
        return None
    if spec == "lab":
        return AugmentSettings()
    path = Path(spec)
    try:
        return AugmentSettings(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise CrystalmelaError(f"--augment {spec}: expected lab, none or a JSON file") from None
    except json.JSONDecodeError as exc:
        raise CrystalmelaError(f"{path}: line {exc.lineno}: not JSON ({exc.msg})") from None
    except (ValidationError, TypeError) as exc:
        raise CrystalmelaError(f"{path}: not augmentation settings: {settings_problem(exc)}") from None


def cmd_calibrate(args) -> int:
    from pathlib import Path

    from crystalmela.training.calibration import fit_ensemble
    data = Path(args.data)
    if not (data / "dataset.json").exists():
        raise CrystalmelaError(f"--data {data}: not a built data set (run `crystalmela dataset build`)")
    if args.n < 1:
        raise CrystalmelaError(f"--n {args.n}: give the number of val patterns to fit on (at least 1)")
    augment = _augment_settings(args.augment)
    for ds in (DATASETS if args.dataset == "all" else (args.dataset,)):
        rec = fit_ensemble(ds, data, n=args.n, seed=args.seed, augment=augment,
                           out=Path(args.out) if args.out else None, equal_weights=args.equal_weights)
        w = rec["weights"]
        weights = "equal weights" if not isinstance(w, dict) else \
            "weights " + ", ".join(f"{n} {v:.2f}" for n, v in w.items())
        print(f"ensemble [{ds}] of {', '.join(rec['models'])}: {weights}; T = {rec['temperature']:.3f}, "
              f"ECE {rec['ece_before']:.3f} -> {rec['ece_after']:.3f}, top-1 {rec['accuracy']:.3f}"
              + (f", {rec['accuracy_crossfit']:.3f} cross-fitted on halves" if "accuracy_crossfit" in rec else "")
              + f" (equal weights {rec['accuracy_equal_weights']:.3f}; {rec['fitted_on']})")
        if rec["n"] < 500:
            print(f"  note: {rec['n']} patterns are few for a fit (the shipped ones used 2,000–4,000); a "
                  "temperature or weights fitted on them can be far off")
        print(f"  written to {rec['path']}" + (f"; the fit it replaced is kept as {rec['previous']} "
                                               "(copy it back to undo)" if rec["previous"] else ""))
    return EXIT_OK


def cmd_serve(args) -> int:
    from pathlib import Path
    try:
        import uvicorn

        from crystalmela.web.app import create_app
        from crystalmela.web.settings import WebSettings
    except ImportError as exc:
        raise CrystalmelaError(f"the web service needs the 'web' extra (pip install crystalmela[web]): {exc}") from None
    try:
        settings = WebSettings.from_env(data_dir=Path(args.data_dir) if args.data_dir else None,
                                        database_url=args.database_url, max_upload_mb=args.max_upload_mb)
    except ValueError as exc:          # from an option or a CRYSTALMELA_* variable: name both
        option = {f: f"--{f.replace('_', '-')} or CRYSTALMELA_{f.upper()}"
                  for f in ("data_dir", "database_url", "max_upload_mb")}
        option |= {f: f"CRYSTALMELA_{f.upper()}" for f in ("secure_cookies", "secret_key")}
        raise CrystalmelaError(f"invalid web settings: {settings_problem(exc, option)}") from None
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return EXIT_OK


def cmd_train(args) -> int:
    from crystalmela.pipeline.preprocess import parse as preprocess_parse
    from crystalmela.training import train

    def say(done) -> None:
        if done.calibration:
            cal = done.calibration
            print(f"{args.model} [{done.dataset}] calibrated: T = {cal['temperature']:.3f}, ECE "
                  f"{cal['ece_before']:.3f} -> {cal['ece_after']:.3f} ({cal['fitted_on']})")
        val = done.card.metrics.get("val", {})
        print(f"{args.model} [{done.dataset}] -> {done.path}: {done.card.size_bytes / 1e6:.2f} MB; val top-1 "
              f"{val.get('accuracy', float('nan')):.3f}, top-2 {val.get('top2_accuracy', float('nan')):.3f}, "
              f"balanced {val.get('balanced_accuracy', float('nan')):.3f}"
              + (f"; the model it replaced is kept in {done.previous}" if done.previous else ""))
    train(args.model, args.data, args.dataset, out=args.out, calibrate=not args.no_calibration, on_done=say,
          config=_read_config(args.config), seed=args.seed, progress=not args.quiet,
          augment=_augment_settings(args.augment), preprocess=preprocess_parse(args.preprocess),
          max_train=args.max_train, max_val=args.max_val, workers=args.workers)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="crystalmela",
                                 description="Crystal system of powder X-ray diffraction patterns.")
    ap.add_argument("--version", action="version", version=f"crystalmela {_version()}")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="predict the crystal system of pattern files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--models", help="comma-separated model names (default: all installed)")
    p.add_argument("--dataset", choices=DATASETS, default="full",
                   help="which trained models to use (default: full)")
    p.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--wavelength", type=float, help="wavelength in Å (overrides the file's)")
    g.add_argument("--anode", choices=list(ANODES_KA1), help="tube anode; its Kα1 wavelength is used")
    p.add_argument("--reader", help="force a reader (see `crystalmela readers`)")
    p.add_argument("--weights", help="ensemble weights, e.g. cnn_flax=2,random_forest=1")
    p.add_argument("--preprocess", default="model", metavar="STEPS",
                   help="model (default: what each model was trained with), none, or steps such as "
                        "ka2,smooth=9,background=1.5")
    p.add_argument("--no-calibration", action="store_true",
                   help="show the models' raw probabilities (skip their fitted temperatures)")
    p.add_argument("--unsure-below", type=float, default=0.5, metavar="P",
                   help="flag the answer as unsure when the ensemble's top-1 is below P (default 0.5)")
    p.add_argument("--no-evidence", action="store_true",
                   help="leave out what the models' features found (lattice_fit's cells, the peaks read)")
    p.add_argument("--no-quality-gate", action="store_true",
                   help="ask the models even about data the quality gate refuses or doubts (docs/quality.md)")
    p.set_defaults(func=cmd_predict)

    k = sub.add_parser("peaks", help="the fitted peak list of measured scans (positions with uncertainties)")
    k.add_argument("files", nargs="+", metavar="FILE")
    k.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    k.add_argument("-o", "--out", help="write the list to this file (one FILE only)")
    g = k.add_mutually_exclusive_group()
    g.add_argument("--wavelength", type=float, help="wavelength in Å (overrides the file's)")
    g.add_argument("--anode", choices=list(ANODES_KA1), help="tube anode; its Kα1 wavelength is used")
    k.add_argument("--reader", help="force a reader (see `crystalmela readers`)")
    k.add_argument("--ka2", choices=["auto", "yes", "no"], default="auto",
                   help="fit Kα1/Kα2 doublets (auto: when the wavelength is a laboratory anode's)")
    k.add_argument("--min-sigma", type=float, default=4.0, metavar="K",
                   help="keep peaks at least K noise σ above the background (default 4)")
    k.set_defaults(func=cmd_peaks)

    s = sub.add_parser("simulate", help="simulate the powder pattern of a CIF structure")
    s.add_argument("file", metavar="FILE.cif")
    s.add_argument("-o", "--output", help="output XY file (default: stdout)")
    s.add_argument("--block", help="CIF data block (default: the first with atom sites)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--wavelength", type=float, help="wavelength in Å (default Cu Kα1 1.54056)")
    g.add_argument("--anode", choices=list(ANODES_KA1), help="tube anode; its Kα1 wavelength is used")
    s.add_argument("--two-theta-min", type=float, default=0.0)
    s.add_argument("--two-theta-max", type=float, default=90.0)
    s.add_argument("--step", type=float, default=0.02)
    s.add_argument("--shape", choices=["pearson7", "pseudo_voigt", "gaussian", "lorentzian"],
                   default="pearson7")
    s.add_argument("--fwhm", type=float, default=0.1, help="peak FWHM in degrees (Caglioti W = FWHM²)")
    s.add_argument("--pearson-m", type=float, default=1.5, help="Pearson VII exponent")
    s.add_argument("--ka2", action="store_true", help="add the Kα2 line (half the Kα1 intensity)")
    s.add_argument("--no-adp", dest="adp", action="store_false", help="ignore displacement parameters")
    s.add_argument("--sticks", action="store_true", help="write the reflection list, not a profile")
    s.set_defaults(func=cmd_simulate)

    ds = sub.add_parser("dataset", help="build and inspect training data sets")
    dsub = ds.add_subparsers(dest="dataset_command", required=True)
    b = dsub.add_parser("build", help="CIF folders and/or synthetic crystals -> reflection-list data set")
    b.add_argument("output", metavar="OUT_DIR")
    b.add_argument("--synthetic", type=int, default=0, metavar="N", help="synthetic structures to make")
    b.add_argument("--organic-fraction", type=float, default=0.5)
    b.add_argument("--prior-power", type=float, default=1.0,
                   help="1 = database space-group frequencies; <1 flattens toward uniform")
    b.add_argument("--cell-model", default="reduced", choices=("reduced", "uniform"),
                   help="monoclinic/triclinic angles: reduced (default) or uniform (the shipped models' "
                        "training data, built before the option)")
    b.add_argument("--sg-draw", default="exact", choices=("exact", "redraw"),
                   help="exact (default): crystals follow the space-group prior; redraw: a failed "
                        "attempt draws a new group (the shipped models' training data, built before the option)")
    b.add_argument("--axis-spread", type=float, default=1.0, metavar="SCALE",
                   help="scales the spread of the cells' axis ratios (default 1; >1 gives more long axes)")
    b.add_argument("--cif", action="append", metavar="DIR", help="folder of CIF files (repeatable)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--chunk-size", type=int, default=500)
    b.add_argument("--workers", type=_at_least(1), help="processes (default: all cores)")
    b.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_dataset_build)
    i = dsub.add_parser("info", help="summarise a built data set")
    i.add_argument("path")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_dataset_info)

    t = sub.add_parser("train", help="train a classifier plugin on a built data set")
    t.add_argument("--model", required=True)
    t.add_argument("--dataset", choices=[*DATASETS, "all"], default="full")
    t.add_argument("--data", required=True, metavar="DATA_DIR", help="a `crystalmela dataset build` folder")
    t.add_argument("--config", help="a named configuration of the model (e.g. paper) or a JSON file")
    t.add_argument("--out", help="model folder (default: the plugin's own models/ folder)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-train", type=_at_least(1), default=None, metavar="N",
                   help="train on a random subset of N training patterns (drawn from --seed)")
    t.add_argument("--max-val", type=_at_least(1), default=None, metavar="N",
                   help="score on a random subset of N validation patterns (drawn from --seed)")
    t.add_argument("--workers", type=_at_least(1), default=1, metavar="N",
                   help="processes computing the features a feature-based model has not cached yet "
                        "(the same features for any N); with --dataset all the later data sets reuse "
                        "the rows the earlier ones cached")
    t.add_argument("--no-calibration", action="store_true",
                   help="skip fitting the temperature on the val split after training")
    t.add_argument("--augment", default="lab", metavar="lab|none|FILE.json",
                   help="lab-condition augmentation of training patterns (default lab: the ranges in "
                        "docs/robustness.md); none = the paper's clean profiles")
    t.add_argument("--preprocess", default="none", metavar="STEPS",
                   help="preprocessing the model is trained with and predict applies to its input: "
                        "none, or e.g. ka2,smooth=9,background=1.5")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    w = sub.add_parser("serve", help="run the web service (pages and JSON API)")
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--port", type=_port, default=8000)
    w.add_argument("--data-dir", help="uploads, SQLite file, secret (default ./crystalmela-data, "
                                      "or CRYSTALMELA_DATA_DIR)")
    w.add_argument("--database-url", help="any SQLAlchemy URL (default SQLite in the data dir)")
    w.add_argument("--max-upload-mb", type=float, help="per-file limit (default 20)")
    w.set_defaults(func=cmd_serve)

    c = sub.add_parser("calibrate", help="fit the weights and temperature of the installed models' ensemble")
    c.add_argument("--data", required=True, metavar="DATA_DIR", help="a `crystalmela dataset build` folder")
    c.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    c.add_argument("--n", type=int, default=4000, help="val-split patterns to fit on (default 4000)")
    c.add_argument("--augment", default="lab", metavar="lab|none|FILE.json")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", help="folder for <dataset>.json (default: $CRYSTALMELA_ENSEMBLES if set, which "
                                 "predict then reads first, else the first folder a plugin offers: the shipped fits)")
    c.add_argument("--equal-weights", action="store_true",
                   help="fit only the temperature; every model weighs 1 (default: fit the weights too)")
    c.set_defaults(func=cmd_calibrate)

    e = sub.add_parser("evaluate", help="cross-validate models on a data set, or score them on labelled patterns")
    e.add_argument("--model", default="all", help="model name(s), comma-separated, or all (default)")
    e.add_argument("--dataset", choices=DATASETS, default="full")
    e.add_argument("--data", metavar="DATA_DIR", help="cross-validation on this built data set")
    e.add_argument("--folds", type=_at_least(2), help="number of folds (default 10)")
    e.add_argument("--limit", type=_at_least(1), metavar="N", help="cross-validate a stratified sample of N patterns")
    e.add_argument("--config", help="model configuration for cross-validation (name or JSON file)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--workers", type=_at_least(1), default=1, help="folds run in parallel processes (default 1)")
    e.add_argument("--scheduler", help="Dask scheduler address: folds run on the cluster")
    e.add_argument("--patterns", metavar="DIR", help="score the installed models on the files in DIR")
    e.add_argument("--cifs", nargs="+", metavar="DIR",
                   help="score the installed models on simulated patterns of the CIFs under DIR (a hold-out)")
    e.add_argument("--lab", action="store_true",
                   help="with --cifs: also under a fixed lab-condition model (Kα2, background, noise, shift)")
    e.add_argument("--labels", metavar="CSV", help="labels for --patterns: columns file,crystal_system")
    g = e.add_mutually_exclusive_group()
    g.add_argument("--wavelength", type=float, help="wavelength in Å for files that do not state it")
    g.add_argument("--anode", choices=list(ANODES_KA1))
    e.add_argument("--reader", help="force a reader for --patterns")
    e.add_argument("--preprocess", default="model", metavar="STEPS",
                   help="for --patterns: model (default), none, or steps such as ka2,background")
    e.add_argument("--no-calibration", action="store_true",
                   help="for --patterns: score the raw probabilities (no fitted temperatures)")
    e.add_argument("--weights", help="ensemble weights, e.g. cnn_flax=2,random_forest=1")
    e.add_argument("--output", metavar="DIR", help="write report.json, report.md and PNG figures here")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("readers", help="list file formats and their extensions")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_readers)

    q = sub.add_parser("plugins", help="list installed plugins, their hooks, and any that failed")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_plugins)

    m = sub.add_parser("models", help="list the installed models: what each was trained on, its val "
                       "scores, temperature and ensemble weight (from the model cards)")
    m.add_argument("--dataset", choices=(*DATASETS, "all"), default="all")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CrystalmelaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("CRYSTALMELA_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (set CRYSTALMELA_DEBUG=1 for a traceback; "
              "please report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
