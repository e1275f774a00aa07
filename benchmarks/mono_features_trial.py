"""Does a monoclinic indexing figure help lattice_fit's classifier? Its installed features (the version
the extractor reports; the figures in docs/models.md were measured with version 5) with and without
five mP numbers from ``mono_trial``'s four-line search, on the same renderings.

    python benchmarks/mono_features_trial.py --data DATA CIF_DIR [--n-train 6000] [--n-val 2000] [--workers 2]
    python benchmarks/mono_features_trial.py --data DATA --time N

``--time N`` only times, on one core, the first N val rows rendered as in training: rendering,
lattice_fit's features and the mP numbers, in ms a pattern (what a feature version with mP would cost).

Renders ``--n-train`` train and ``--n-val`` val rows of the built data set's full set as lattice_fit's
training does (default lab augmentation), and every readable CIF clean and under eval_holdout's lab
model; computes lattice_fit's features plus log10 M, fraction indexed, lines per peak and the
wide-window pair of the best mP cell; fits extra trees with lattice_fit's ``budget`` settings on both
column sets (three seeds) and prints val and hold-out top-1 / top-2 / balanced accuracy and the
triclinic and monoclinic recall. Slow: ≈ 0.24 s a training pattern on one core (before mono_trial's
scorer was made 5× faster).
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
N_MONO = 5


def mono_features(pattern) -> np.ndarray:
    import mono_trial as mt
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit.plugin import pick_peaks
    tt = np.sort(pick_peaks(pattern))[:ix.N_OBS]
    if tt.size < 6:
        return np.zeros(N_MONO, np.float32)
    q, slope = ix.peaks_q(tt, pattern.wavelength)
    M, f, n, p, z = mt.fit_mono_four_line(q, slope)
    return np.array([np.log10(max(M, 1e-3)), f, n, *ix._rescore(mt.score_mono, p, z, q, slope)], np.float32)


def _features(pattern) -> np.ndarray:
    from crystalmela_lattice_fit.plugin import lattice_fit_features
    return np.r_[lattice_fit_features(pattern), mono_features(pattern)]


def _rows(job) -> tuple[np.ndarray, np.ndarray]:
    """Features of one batch of data-set rows (a process-pool task)."""
    data, split, rows = job
    from crystalmela.augment import AugmentSettings
    from crystalmela.plugins import get_registry
    from crystalmela.training import TrainRequest
    spec = get_registry().classifier("lattice_fit")
    req = TrainRequest(name="lattice_fit", version=spec.version, feature=spec.feature, dataset="full",
                       data=Path(data), out_dir=Path("."), grid=spec.grid, augment=AugmentSettings(),
                       progress=False, seed=0)
    rset = req.reflections(split)
    return np.array([_features(p) for p in req.patterns(rset, rows)]), rset.labels[rows]


def _holdout(dirs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from eval_holdout import lab_pattern
    from crystalmela.errors import CrystalmelaError
    from crystalmela.plugins import get_registry
    from crystalmela.simulate import simulate
    from crystalmela.structure import StructureError, read_cif
    from crystalmela.systems import CRYSTAL_SYSTEMS
    from crystalmela.training import to_input
    grid = get_registry().classifier("lattice_fit").grid
    rng = np.random.default_rng(0)
    X, y, lab = [], [], []
    for path in sorted(p for d in dirs for p in d.rglob("*.cif")):
        try:
            crystal = read_cif(path)[0]
            pats = [to_input(simulate(crystal).y, grid), to_input(lab_pattern(crystal, rng).y, grid)]
        except (StructureError, CrystalmelaError):
            continue
        for k, pattern in enumerate(pats):
            X.append(_features(pattern))
            y.append(CRYSTAL_SYSTEMS.index(crystal.crystal_system))
            lab.append(k)
    return np.array(X), np.array(y), np.array(lab)


def _split(data, split, n, workers, batch=250):
    from crystalmela.dataset import load_reflections
    total = len(load_reflections(data, "full", split))
    rows = np.sort(np.random.default_rng(1).permutation(total)[:n])
    jobs = [(str(data), split, rows[i:i + batch]) for i in range(0, len(rows), batch)]
    if workers <= 1:
        parts = [_rows(job) for job in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_rows, jobs))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _time(data: Path, n: int) -> int:
    import time
    from crystalmela.augment import AugmentSettings
    from crystalmela.plugins import get_registry
    from crystalmela.training import TrainRequest
    from crystalmela_lattice_fit.plugin import lattice_fit_features
    spec = get_registry().classifier("lattice_fit")
    req = TrainRequest(name="lattice_fit", version=spec.version, feature=spec.feature, dataset="full", data=data,
                       out_dir=Path("."), grid=spec.grid, augment=AugmentSettings(), progress=False, seed=0)
    rset = req.reflections("val")
    rows = np.arange(min(max(n, 1), len(rset.labels)))
    t = [time.perf_counter()]
    patterns = list(req.patterns(rset, rows))
    t.append(time.perf_counter())
    for p in patterns:
        lattice_fit_features(p)
    t.append(time.perf_counter())
    for p in patterns:
        mono_features(p)
    t.append(time.perf_counter())
    ms = np.diff(t) / len(patterns) * 1e3
    print(f"{len(patterns)} val rows of {data}, lab-like: rendering {ms[0]:.1f} ms, lattice_fit's features "
          f"(version {get_registry().feature('lattice_fit').version}) {ms[1]:.1f} ms, mP numbers {ms[2]:.1f} ms "
          "a pattern (one core)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path, help="real CIF folders (the hold-out)")
    ap.add_argument("--data", type=Path, required=True, help="a built data set")
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--n-val", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--time", type=int, metavar="N", help="only time N val rows (see above)")
    args = ap.parse_args(argv)
    if not (args.data / "dataset.json").exists():
        print(f"--data {args.data}: not a built data set", file=sys.stderr)
        return 2
    if args.time is not None:
        return _time(args.data, args.time)
    if not args.dirs:
        ap.error("give the real CIF folders (or --time N)")
    import warnings
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.metrics import balanced_accuracy_score
    warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
    Xh, yh, lab = _holdout(args.dirs)
    if len(yh) == 0:
        print(f"no readable CIF under {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 2
    X, y = _split(args.data, "train", args.n_train, args.workers)
    Xv, yv = _split(args.data, "val", args.n_val, args.workers)

    def top(p, y, k):
        return float((np.argsort(-p, 1)[:, :k] == y[:, None]).any(1).mean())
    n5 = X.shape[1] - N_MONO
    from crystalmela.plugins import get_registry
    v = f"version {get_registry().feature('lattice_fit').version}"
    print(f"{len(y)} train and {len(yv)} val patterns of {args.data}; {int((lab == 0).sum())} real structures")
    for name, cols in ((f"{v} ({n5})", slice(0, n5)), (f"{v} + mP ({n5 + N_MONO})", slice(None))):
        rows = []
        for seed in (0, 1, 2):
            model = ExtraTreesClassifier(n_estimators=100, max_depth=30, min_samples_leaf=10, max_features="sqrt",
                                         n_jobs=args.workers, random_state=seed).fit(X[:, cols], y)
            pv = model.predict_proba(Xv[:, cols])
            row = [top(pv, yv, 1), top(pv, yv, 2), balanced_accuracy_score(yv, pv.argmax(1))]
            for k in (0, 1):
                ph, yy = model.predict_proba(Xh[lab == k][:, cols]), yh[lab == k]
                pred = ph.argmax(1)
                row += [top(ph, yy, 1), top(ph, yy, 2), balanced_accuracy_score(yy, pred),
                        int((pred[yy == 0] == 0).sum()), int((pred[yy == 1] == 1).sum())]
            rows.append(row)
        a = np.mean(rows, axis=0)
        print(f"{name:22s} val {a[0]:.3f} / {a[1]:.3f} / {a[2]:.3f} | hold-out clean {a[3]:.3f} / {a[4]:.3f} / "
              f"{a[5]:.3f}, triclinic {a[6]:.1f}, monoclinic {a[7]:.1f} | lab {a[8]:.3f} / {a[9]:.3f} / "
              f"{a[10]:.3f}, triclinic {a[11]:.1f}, monoclinic {a[12]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
