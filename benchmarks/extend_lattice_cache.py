"""Append lattice_fit feature version 14's extinction columns to a data set's version-13 feature
caches, so the models retrain without recomputing the 97 columns version 14 left unchanged.

    python benchmarks/extend_lattice_cache.py DATA_DIR [--workers 2] [--check 6]

For each ``DATA_DIR/features/lattice_fit-v13-*.npz`` that ``crystalmela train``'s default request
(``--augment lab`` or plain, ``--preprocess none``, ``--seed 0``) names, every cached row is rendered
again as training renders it, only the orthorhombic searches run (``fit_ortho`` for its refined
cells, then ``ortho_extinction``), and the eight columns are appended; the two columns that compare
with other families take those families' figures from the cached version-13 columns. First,
``--check`` rows are computed with the full version-14 extractor and must equal the extended rows
exactly; otherwise nothing is written (exit 1). Version-14 caches already there are left alone.
Computing only the new columns takes about a quarter of the full extractor's time per row.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _request(data: Path, augment: bool):
    from crystalmela.augment import AugmentSettings
    from crystalmela.plugins import get_registry
    from crystalmela.training import TrainRequest
    spec = get_registry().classifier("lattice_fit")
    return TrainRequest(name=spec.name, version=spec.version, feature=spec.feature, dataset="full", data=data,
                        out_dir=data / "unused", grid=spec.grid, seed=0, progress=False,
                        augment=AugmentSettings() if augment else None)


def _delta(pattern) -> np.ndarray:
    """``extinction_cell``'s six columns and its log10(M·f⁴) (float64: the extractor subtracts the
    other families' scores before rounding to float32); NaN there when there is no cell, zeros with
    fewer than 4 peaks, as the extractor writes."""
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit.plugin import pick_peaks
    out = np.zeros(7)
    out[6] = np.nan
    tt = np.sort(pick_peaks(pattern))[:ix.N_OBS]
    if tt.size < 4:
        return out
    wl = pattern.grid.wavelength if pattern.grid is not None else pattern.wavelength
    q, slope = ix.peaks_q(tt, wl)
    refined: list = []
    ix.fit_ortho(q, slope, refined)
    found = ix.extinction_cell(q, slope, refined)
    if found is not None:
        out[:6], out[6] = found[0], found[1]
    return out


def _task(task, data: Path, augment: bool, ids_all: np.ndarray):
    from crystalmela.dataset import load_reflections
    _, rows = task
    req = _request(data, augment)
    rset = load_reflections(data, "full", None)
    return np.stack([_delta(p) for p in req.patterns(rset, rows, augment=augment)])


def combine(X13: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Version-14 rows from version-13 rows and ``_delta``'s columns (the same arithmetic, in the same
    precision, as ``plugin.extinction_columns``)."""
    from crystalmela_lattice_fit.indexing import FAMILIES, FRACTION, N_EXTINCTION
    X13 = np.asarray(X13, np.float32)
    out = np.zeros((len(X13), N_EXTINCTION), np.float32)
    cols = [FRACTION[k] for k in FAMILIES if k != "oP"]
    for i, (x, d) in enumerate(zip(X13, delta)):
        if np.isnan(d[6]):
            continue
        frac = x[cols]
        higher = float(np.where(frac > 0, x[[c - 1 for c in cols]] + 4.0 * np.log10(np.maximum(frac, 1e-3)), -9.0).max())
        mono = x[MONO:MONO + 2]
        mp = float(mono[0] + 4.0 * np.log10(mono[1])) if mono[1] > 0 else -9.0
        out[i, :6] = d[:6]
        out[i, 6:] = (d[6] - higher, d[6] - mp)
    return np.concatenate([X13, out], axis=1)


MONO = 49 + 11 + 16 + 2       # first column of mono_features in version 13 (after lattice, 1/d², relative, gains)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--check", type=int, default=6, help="rows compared with the full extractor first")
    args = ap.parse_args(argv)
    from crystalmela.dataset import load_reflections
    from crystalmela.parallel import map_unordered
    from crystalmela.plugins import get_registry
    extractor = get_registry().feature("lattice_fit")
    if extractor.version != "14":
        print(f"the installed lattice_fit extractor is version {extractor.version}, not 14", file=sys.stderr)
        return 2
    if not (args.data / "dataset.json").exists():
        print(f"{args.data}: not a built data set", file=sys.stderr)
        return 2
    rset = load_reflections(args.data, "full", None)
    where = {ident: i for i, ident in enumerate(rset.ids.tolist())}
    done = 0
    for augment in (True, False):
        req = _request(args.data, augment)
        new = args.data / "features" / f"{req._cache_name(augment)}.npz"
        old = new.with_name(new.name.replace("lattice_fit-v14-", "lattice_fit-v13-"))
        if not old.exists() or new.exists():
            print(f"{old.name}: {'absent' if not old.exists() else new.name + ' exists'}; skipped")
            continue
        with np.load(old, allow_pickle=False) as z:
            ids, X13 = z["ids"], z["X"]
        rows = np.array([where[i] for i in ids.tolist()])
        sample = np.linspace(0, len(rows) - 1, min(args.check, len(rows))).astype(int)
        full = np.stack([extractor.extract(p) for p in req.patterns(rset, rows[sample], augment=augment)])
        got = combine(X13[sample], np.stack([_delta(p) for p in req.patterns(rset, rows[sample], augment=augment)]))
        if not np.array_equal(full, got):
            bad = np.argwhere(full != got)
            print(f"{old.name}: extended rows differ from the extractor's (row, column): {bad[:5].tolist()}; "
                  "nothing written", file=sys.stderr)
            return 1
        step = 512
        tasks = [(s, rows[s:s + step]) for s in range(0, len(rows), step)]
        parts = {}
        for (s, _), D in map_unordered(_task, tasks, args.data, augment, None, workers=args.workers):
            parts[s] = D
            print(f"\r{old.name}: {sum(len(p) for p in parts.values())}/{len(rows)}", end="", flush=True)
        print()
        X14 = combine(X13, np.concatenate([parts[s] for s in sorted(parts)]))
        tmp = new.with_name(new.stem + ".tmp.npz")
        np.savez(tmp, ids=ids, X=X14)
        tmp.replace(new)
        print(f"{new.name}: {X14.shape[0]} rows × {X14.shape[1]} columns")
        done += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
