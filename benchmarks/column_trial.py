"""Would more lattice_fit columns help? Trees with and without trial columns, on the cached rows of a
built data set and on the real-structure hold-out.

    python benchmarks/column_trial.py DATA CIF_DIR [CIF_DIR ...] --columns quality [--dataset full]
        [--augment FILE] [--seeds 3] [--workers 2]

A trial column set is a function of a pattern (``COLUMNS``, below). Rather than extracting every
feature again (23 minutes on two cores for the 20k build's training rows), the script reads the installed lattice_fit extractor's
feature cache of DATA (written by ``crystalmela train --model lattice_fit --data DATA``, with the
same ``--augment``), renders each cached train and val row again exactly as training did (same
seeds: first checked on a few rows, whose cached features must equal the extractor's on the new
rendering) and computes only the trial columns. The hold-out CIFs are rendered clean and under
eval_holdout's lab model (``eval_holdout.cif_patterns``) and get both. Then the classifier's
shipped tree settings are fitted on the train rows with and without the trial columns, for each
seed, and the table gives the mean top-1 / top-2 on the val rows (as rendered for training) and on
the hold-out, clean and lab. One hold-out structure is 0.004 of a rate: read a gain against the
spread over seeds.

Column sets:
``quality``: how sharp and clean a pattern is (``quality``): the idea that the same indexing figures
mean more on a sharp, quiet pattern than on a broad noisy one, which the trees cannot tell apart
without such columns. Measured 2026-12-01: no gain (docs/models.md).
``sweep``: the aP cell found with the swept third cross term (``mono_trial.sweep_trials``) beside the
shipped trials, its figures and its lattice's two-fold axes (``sweep``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

QUALITY_PEAKS = 8   # strongest peaks whose widths ``quality`` measures


def quality(pattern) -> np.ndarray:
    """log10 of the median full width at half maximum (°) of the ``QUALITY_PEAKS`` strongest peaks
    lattice_fit picks, log10 of the counting noise at the median background over the strongest net
    peak, the median background over that peak, and the share of picked maxima dropped as Kα2 lines."""
    from crystalmela_lattice_fit.plugin import peak_table
    t = peak_table(pattern)
    out = np.zeros(4, np.float32)
    if t["index"].size == 0:
        return out
    net, idx, step = t["net"], t["index"], t["step"]
    top = float(net.max())
    mid = float(np.median(t["background"]))
    at_mid = float(np.interp(mid, np.sort(t["background"]), t["noise"][np.argsort(t["background"])]))
    out[0] = np.log10(max(_median_width(net, idx[~t["ka2"]], step), step))
    out[1] = np.log10(max(at_mid, 1e-6 * top) / top)
    out[2] = mid / top
    out[3] = t["ka2"].mean()
    return out


def _median_width(net: np.ndarray, idx: np.ndarray, step: float) -> float:
    """Median full width at half maximum (°) of the ``QUALITY_PEAKS`` highest peaks at ``idx`` of the
    background-free profile ``net``: out from each peak to where ``net`` first falls below half its
    height, interpolated linearly (a blended neighbour makes a line look wider)."""
    if idx.size == 0:
        return 0.0
    widths = []
    for i in idx[np.argsort(-net[idx])[:QUALITY_PEAKS]]:
        half, width = net[i] / 2.0, 0.0
        for direction in (-1, 1):
            j = i
            while 0 < j < net.size - 1 and net[j + direction] > half:
                j += direction
            k = j + direction
            width += abs(j - i) + ((net[j] - half) / max(net[j] - net[k], 1e-12) if 0 <= k < net.size else 0.0)
        widths.append(width * step)
    return float(np.median(widths))


def sweep(pattern) -> np.ndarray:
    """The aP cell of lattice_fit's search with ``mono_trial.sweep_trials`` beside its trials (the
    better cell by M·f⁴, as ``mono_trial --trials sweep`` measures it): the five ``cell_figures``
    (log10 M, fraction indexed, lines per peak, log10 M and fraction at 0.05°), then its lattice's
    two-fold axes within 0.5°, 1.5° and 3° and the smallest obliquity (``symmetry_features``' aP part).
    Appended beside the shipped aP columns, so the trees can take either."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from mono_trial import fit_tric_with, sweep_trials
    from crystalmela_lattice_fit.indexing import cell_figures
    from crystalmela_lattice_fit.lattice_symmetry import symmetry_features
    from crystalmela_lattice_fit.plugin import pick_peaks
    from crystalmela_lattice_fit.triclinic import MIN_PEAKS, score_tric
    wl = pattern.grid.wavelength if pattern.grid is not None else pattern.wavelength
    found = cell_figures(pick_peaks(pattern), wl, MIN_PEAKS,
                         lambda q, slope: fit_tric_with(q, slope, sweep_trials), score_tric)
    out = np.zeros(9, np.float32)
    if found is None:
        out[5:] = symmetry_features(None, None)[:4]
        return out
    out[:5] = found[0]
    out[5:] = symmetry_features(found[1], None)[:4]
    return out


COLUMNS = {"quality": quality, "sweep": sweep}
CHECKED_ROWS = 3    # cached rows whose features are recomputed to check the renderings match


def _request(data: Path, dataset: str, augment):
    from crystalmela.training import TrainRequest
    from crystalmela_lattice_fit.plugin import FEATURE, NAME
    return TrainRequest(name=NAME, version="-", feature=FEATURE, dataset=dataset, data=data, out_dir=data,
                        augment=augment, progress=False)


_WORKER: dict = {}


def _columns_of(task):
    """Trial columns of one chunk of rows (a process-pool task; the split is loaded once a process)."""
    data, dataset, augment, split, rows, name = task
    key = (data, dataset, split)
    if _WORKER.get("key") != key:
        req = _request(data, dataset, augment)
        _WORKER.update(key=key, req=req, rset=req.reflections(split))
    fn = COLUMNS[name]
    return np.stack([fn(p) for p in _WORKER["req"].patterns(_WORKER["rset"], rows)])


def cached_rows(data: Path, dataset: str, augment, split: str, name: str, workers: int):
    """(cached features, trial columns, labels) of a split's rows; raises CrystalmelaError when the
    cache lacks a row or a recomputed row differs from it."""
    from multiprocessing import get_context
    from crystalmela.errors import CrystalmelaError
    from crystalmela.plugins import get_registry
    req = _request(data, dataset, augment)
    rset = req.reflections(split)
    X = req.cached_features(rset.ids)
    if X is None:
        raise CrystalmelaError(f"{data}: the lattice_fit feature cache ({req._cache_name(True)}.npz) lacks rows "
                               f"of the {split} split; run crystalmela train --model lattice_fit --data {data} "
                               "with the same --augment first")
    extract = get_registry().feature(req.feature).extract
    check = np.linspace(0, len(rset) - 1, min(CHECKED_ROWS, len(rset))).astype(int)
    for i, p in zip(check, req.patterns(rset, check)):
        if not np.allclose(np.asarray(extract(p), np.float32), X[i], atol=1e-5, equal_nan=True):
            raise CrystalmelaError(f"{data}: row {rset.ids[i]} renders to other features than its cache holds "
                                   "(the cache was written by other code or settings); cannot extend it")
    chunks = [np.arange(s, min(s + 500, len(rset))) for s in range(0, len(rset), 500)]
    tasks = [(data, dataset, augment, split, rows, name) for rows in chunks]
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_columns_of, tasks)
    else:
        parts = [_columns_of(t) for t in tasks]
    return X, np.concatenate(parts), rset.labels


def holdout_rows(dirs, name: str):
    """(features, trial columns, labels, is_lab) of the hold-out CIFs, clean and lab."""
    sys.path.insert(0, str(Path(__file__).parent))
    from eval_holdout import cif_patterns
    from crystalmela.errors import CrystalmelaError
    from crystalmela.pattern import PAPER_GRID
    from crystalmela.plugins import get_registry
    from crystalmela.systems import CRYSTAL_SYSTEMS
    from crystalmela_lattice_fit.plugin import FEATURE
    extract, fn = get_registry().feature(FEATURE).extract, COLUMNS[name]
    X, T, y, lab = [], [], [], []
    for is_lab in (False, True):
        for _, crystal, pattern in cif_patterns(dirs, is_lab):
            try:
                on_grid = pattern.to_grid(PAPER_GRID)
            except CrystalmelaError:
                continue
            X.append(extract(on_grid))
            T.append(fn(on_grid))
            y.append(CRYSTAL_SYSTEMS.index(crystal.crystal_system))
            lab.append(is_lab)
    return np.array(X, np.float32), np.array(T, np.float32), np.array(y), np.array(lab)


def _rates(P, y):
    order = np.argsort(-P, axis=1)
    return (order[:, 0] == y).mean(), (order[:, :2] == y[:, None]).any(axis=1).mean()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("dirs", nargs="+", type=Path, help="hold-out CIF folders")
    ap.add_argument("--columns", required=True, choices=sorted(COLUMNS))
    ap.add_argument("--dataset", default="full", choices=("full", "organic", "inorganic"))
    ap.add_argument("--augment", type=Path, help="the AugmentSettings JSON the cache was trained with")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    if args.seeds < 1 or args.workers < 1:
        ap.error("--seeds and --workers must be at least 1")
    from sklearn.ensemble import ExtraTreesClassifier
    from crystalmela.augment import AugmentSettings
    from crystalmela.errors import CrystalmelaError
    from crystalmela_lattice_fit.plugin import CONFIGS, DEFAULT_CONFIG
    try:
        if args.augment is None:
            augment = AugmentSettings()
        else:
            try:
                augment = AugmentSettings.model_validate_json(args.augment.read_text())
            except (OSError, ValueError) as exc:
                raise CrystalmelaError(f"--augment {args.augment}: {exc}") from None
        if not args.data.is_dir():
            raise CrystalmelaError(f"{args.data}: no such data set folder")
        missing = [str(d) for d in args.dirs if not d.is_dir()]
        if missing:
            raise CrystalmelaError(f"no such CIF folder: {', '.join(missing)}")
        Xt, Tt, yt = cached_rows(args.data, args.dataset, augment, "train", args.columns, args.workers)
        Xv, Tv, yv = cached_rows(args.data, args.dataset, augment, "val", args.columns, args.workers)
        Xh, Th, yh, lab = holdout_rows(args.dirs, args.columns)
    except CrystalmelaError as exc:
        print(exc, file=sys.stderr)
        return 2
    if len(yh) == 0:
        print(f"no readable crystal under {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 2
    cfg = CONFIGS[DEFAULT_CONFIG]
    print(f"{len(yt)} train and {len(yv)} val rows of {args.data} ({args.dataset}); hold-out {int((~lab).sum())} "
          f"structures; trees {DEFAULT_CONFIG}; mean of seeds 0-{args.seeds - 1}, top-1 / top-2")
    print(f"{'features':28s} {'val':>13s} {'hold-out clean':>15s} {'hold-out lab':>13s}")
    for tag, extra in (("lattice_fit", False), (f"+ {args.columns} ({Tt.shape[1]})", True)):
        def cols(X, T):
            return np.c_[X, T] if extra else X
        r = []
        for seed in range(args.seeds):
            m = ExtraTreesClassifier(**cfg, random_state=seed, n_jobs=args.workers).fit(cols(Xt, Tt), yt)
            Ph = m.predict_proba(cols(Xh, Th))
            r.append((*_rates(m.predict_proba(cols(Xv, Tv)), yv), *_rates(Ph[~lab], yh[~lab]),
                      *_rates(Ph[lab], yh[lab])))
        v = np.mean(r, axis=0)
        print(f"{tag:28s} {v[0]:.3f} / {v[1]:.3f}   {v[2]:.3f} / {v[3]:.3f}   {v[4]:.3f} / {v[5]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
