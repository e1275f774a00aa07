"""Monoclinic and triclinic indexing on real structures: does lattice_fit's monoclinic cell index the
peaks of monoclinic patterns and not those of triclinic ones, and its triclinic cell those that the
monoclinic one leaves?

    python benchmarks/mono_trial.py CIF_DIR [CIF_DIR ...] [--lab] [--seeded]
    python benchmarks/mono_trial.py --data DATA [--n 2000] [--lab]

The four-line trials are lattice_fit's (``crystalmela_lattice_fit.monoclinic``, feature version 9,
where this experiment moved), the aP zone trials too (``triclinic``, version 10). ``--seeded`` tries
the first mP idea instead: refining from the best orthorhombic cell with seven starting values of
cos β* (spurious fits; see docs/models.md).
Per true system (monoclinic split at β within 5° of 90°) the table gives the share fully indexed by
oP and by mP, by mP but not oP, the median log10 M of each, the share with every peak indexed and
M > 10 by mP and by aP, the share aP indexes in full (M > 10) where mP does not, and the share
whose aP (mP, oP) cell is the crystal's own lattice, as far as the peaks tell: M at least 0.8 of
that of the crystal's own cell (from its CIF or the data set, refined on the same peaks with a zero
shift) and 95 % of the peaks indexed, counted where the own cell indexes 95 % of them (n; for mP,
cells with b unique; for oP, cells with three right angles: centred ones index as primitive, with
spare lines). Then the triclinic crystals whose lattice the aP search misses and the orthorhombic
ones the oP search misses, with both figures, and each search's mean time a pattern.
``--data DATA``: ``--n`` val rows of a built data set instead, rendered as lattice_fit's training
renders them: the searches' development set, since the real structures are the hold-out.
``--trials hough|half|sweep`` adds a second aP search over other trial rows (``hough_trials``,
``half_trials``, ``sweep_trials``; measured 2026-12-01, not in the features) and keeps the better of
the two cells by M·f⁴, as a feature would.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

COS_BETA = np.array([0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3])   # starting |cos β*|
AXIS_MAX = 10       # largest index along an axis up to the last peak, for --seeded: lattice_fit's ORTHO_MAX
                    # when its figures in docs/models.md were measured (it is 16 since feature version 6)


def fit_mono(q, slope, p_ortho):
    """(M, fraction indexed, lines per peak, (A, B, C, D), zero shift) of the best refined mP cell."""
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit.monoclinic import score_mono
    if p_ortho is None:
        return 0.0, 0.0, 0.0, None, 0.0

    def valid(p, q_max):
        A, B, C, D = p
        return bool((p > 1e-5).all() and 4 * A * C > D * D * 1.0001 and
                    np.sqrt(q_max / np.array([A, B, C - D * D / (4 * A)])).max() <= AXIS_MAX * 1.5)
    rows = [(a, p_ortho[u], c, 2 * cs * np.sqrt(a * c))
            for u in range(3) for a, c in [[p_ortho[i] for i in range(3) if i != u]] for cs in COS_BETA]
    P = np.array(rows)
    return ix._search(P, q, slope, score_mono, valid, keep=len(P))


def own_cells(cell):
    """The crystal's own reciprocal metric as rows of each search's parameters: aP (A, B, C, D, E, F)
    always, mP (A, B, C, D) when the cell is monoclinic with b unique and oP (A, B, C) when its three
    angles are right angles (None otherwise). ``cell``: a, b, c (Å), α, β, γ (°)."""
    from crystalmela.augment import reciprocal_metric
    R = reciprocal_metric(cell)
    aP = np.array([R[0, 0], R[1, 1], R[2, 2], 2 * R[0, 1], 2 * R[0, 2], 2 * R[1, 2]])
    right = np.abs(np.asarray(cell[3:], float) - 90) < 1e-3
    mP = np.array([R[0, 0], R[1, 1], R[2, 2], abs(2 * R[0, 2])]) if right[0] and right[2] else None
    return {"aP": aP, "mP": mP, "oP": aP[:3] if right.all() else None}


def own_cell_figure(cell, q, slope, kind: str = "aP") -> tuple[float, float]:
    """(M, fraction indexed) of the crystal's own cell on the peaks ``q``, refined with a zero shift
    as the searches refine their trials: what the aP (mP, oP) search would reach if its trials held
    the true lattice. (0, 0) when the cell has no row of that kind (``own_cells``)."""
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit import monoclinic, triclinic
    P = own_cells(np.asarray(cell, float))[kind]
    if P is None:
        return 0.0, 0.0
    if kind == "aP":
        return ix._search(P[None], q, slope, triclinic.score_tric,
                          lambda p, q_max: bool(triclinic.plausible(p, q_max)[0]), keep=1, positive=False)[:2]
    if kind == "mP":
        return ix._search(P[None], q, slope, monoclinic.score_mono,
                          lambda p, q_max: bool(monoclinic.plausible(p, q_max)[0]), keep=1)[:2]
    return ix._search(P[None], q, slope, ix._score_ortho, lambda p, q_max: bool((p > 1e-5).all()), keep=1)[:2]


HOUGH_PEAKS = 20    # peaks that vote for a missing cross term
HOUGH_ZONE = 3      # zone candidates of each of the two other cross terms
HOUGH_KEEP = 2      # values kept per missing cross term
HALF_FIRST = 2      # peaks also tried as the second order (Q/4) of an axial line


def _hough(q, tol, P, j) -> np.ndarray:
    """The ``HOUGH_KEEP`` values of parameter ``j`` (3 D, 4 E, 5 F) of aP trial rows P that most peaks
    agree with, the others held: each of the first ``HOUGH_PEAKS`` peaks, read as each line with
    indices up to 2 whose coefficient of ``j`` is non-zero, gives a value (Q − the other terms) / that
    coefficient; votes are counted in bins of the median value tolerance, each value counting its
    bin and the two beside it (a one-parameter Hough transform). Rows (n, HOUGH_KEEP); NaN where
    fewer than two values agree."""
    from crystalmela_lattice_fit.triclinic import CROSS_RATIO, _half_space
    X = _half_space(2, 2, 2)
    X = X[X[:, j] != 0]
    c = X[:, j]
    P0 = P.copy()
    P0[:, j] = 0.0
    k = min(q.size, HOUGH_PEAKS)
    vals = ((q[None, None, :k] - (P0 @ X.T)[:, :, None]) / c[None, :, None]).reshape(len(P), -1)
    width = np.broadcast_to((tol[None, :k] / np.abs(c)[:, None]).ravel(), vals.shape)
    a, b = {3: (0, 1), 4: (0, 2), 5: (1, 2)}[j]
    bound = 2.0 * np.sqrt(P[:, a] * P[:, b]) * CROSS_RATIO           # a metric needs |D| < 2√(AB)
    ok = np.abs(vals) < bound[:, None]
    n = vals.shape[0]
    wb, lo = float(np.median(width)), -float(bound.max())
    nb = int(np.ceil(-2.0 * lo / wb)) + 3
    key = np.where(ok, np.arange(n)[:, None] * nb + np.clip(((vals - lo) / wb).astype(np.int64) + 1, 0, nb - 1),
                   n * nb)
    hist = np.bincount(key.ravel(), minlength=n * nb + 1)
    count = np.where(ok, hist[key] + hist[np.maximum(key - 1, 0)] + hist[np.minimum(key + 1, n * nb)], 0)
    out = np.full((n, HOUGH_KEEP), np.nan)
    r = np.arange(n)
    for i in range(HOUGH_KEEP):
        best = np.argmax(count, axis=1)
        good = count[r, best] > 1
        out[good, i] = vals[r, best][good]
        count = np.where(np.abs(vals - vals[r, best][:, None]) <= 2.0 * width[r, best][:, None], 0, count)
    return out


def hough_trials(q, slope) -> np.ndarray:
    """aP trial rows with one cross term left to the whole pattern: the two others from their zones
    (``HOUGH_ZONE`` each, lattice_fit's ``_cross``), the third voted for by every peak (``_hough``).
    Meant for a cross term whose zone lines are weak or missing, the failure the hold-out's missed
    triclinic patterns showed."""
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit.triclinic import AXES_FIRST, _cross
    trip = np.array(list(combinations(range(min(q.size, AXES_FIRST)), 3)))
    A, B, C = q[trip].T
    tol = slope * ix.TOL_LOOSE
    zones = {3: _cross(q, tol, A, B)[:, :HOUGH_ZONE], 4: _cross(q, tol, A, C)[:, :HOUGH_ZONE],
             5: _cross(q, tol, B, C)[:, :HOUGH_ZONE]}
    out = []
    for j, (u, w) in {5: (3, 4), 4: (3, 5), 3: (4, 5)}.items():
        P = np.zeros((trip.shape[0], HOUGH_ZONE, HOUGH_ZONE, 6))
        P[..., 0], P[..., 1], P[..., 2] = (x[:, None, None] for x in (A, B, C))
        P[..., u] = zones[u][:, :, None]
        P[..., w] = zones[w][:, None, :]
        P = P.reshape(-1, 6)
        vals = _hough(q, tol, P, j)
        for i in range(vals.shape[1]):
            R = P.copy()
            R[:, j] = vals[:, i]
            out.append(R[~np.isnan(vals[:, i])])
    return np.concatenate(out)


def half_trials(q, slope) -> np.ndarray:
    """lattice_fit's aP trials with one axial line one of the first ``HALF_FIRST`` peaks read as a
    second order (Q/4): a layered crystal may show 002 and not 001, and first lines such as 011,
    002, 101 span half the lattice."""
    from crystalmela_lattice_fit.triclinic import AXES_FIRST, tric_trials
    n = min(q.size, AXES_FIRST)
    qa = np.r_[q[:n], q[:min(HALF_FIRST, n)] / 4.0]
    trip = np.array([t for t in combinations(range(qa.size), 3)
                     if sum(i >= n for i in t) == 1 and t[-1] - n not in t[:2]])
    return tric_trials(q, slope, qa[trip].T)


SWEEP_PARTIAL = 16     # partial rows (one cross term unknown) swept over that term's whole range
SWEEP_KEEP = 3         # values kept per partial row from the coarse sweep, each then finely scanned
SWEEP_ZONE = 3         # zone candidates of each known cross term (4, lattice_fit's CROSS_KEEP, found fewer)


def _zone_score(q, tol, P, j):
    """Peaks indexed (loose tolerance) by the lines of aP rows P that do not involve term ``j`` (the
    two zones whose cross terms are known, and the axial rows), less a quarter of those lines up to
    the last peak that index nothing: how good a partial row is before its third cross term is known."""
    from crystalmela_lattice_fit.triclinic import _half_space, axes_d
    q_max = q[-1] * 1.01
    out = np.full(len(P), -np.inf)
    bounds = np.clip(np.floor(np.nan_to_num(axes_d(P, q_max), nan=0.0)).astype(int), 1, 12)
    for i, row in enumerate(P):
        X = _half_space(*bounds[i])
        Q = np.sort((X[X[:, j] == 0] @ row))
        Q = Q[Q <= q_max]
        if Q.size == 0:
            continue
        near = np.abs(Q[:, None] - q[None, :]) <= tol[None, :]          # (lines, peaks)
        out[i] = near.any(axis=0).sum() - 0.25 * (~near.any(axis=1)).sum()
    return out


def sweep_trials(q, slope) -> np.ndarray:
    """aP trial rows whose third cross term is swept over its whole metric range: the zone candidates
    (lattice_fit's ``_cross``) give two cross terms; the best ``SWEEP_PARTIAL`` such partial rows
    (``_zone_score``) are tried at every value of the third in steps of half the loose tolerance,
    scored on every peak; the ``SWEEP_KEEP`` best values of each are scanned again in steps of an
    eighth of it at the narrow tolerance. For a pattern whose third zone has no low lines to vote
    (DIBBUL01: hk0), a vote cannot find that term, while the whole pattern picks it out."""
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit.triclinic import AXES_FIRST, CROSS_RATIO, _cross, plausible, score_tric
    trip = np.array(list(combinations(range(min(q.size, AXES_FIRST)), 3)))
    A, B, C = q[trip].T
    tol = slope * ix.TOL_LOOSE
    zones = {3: _cross(q, tol, A, B)[:, :SWEEP_ZONE], 4: _cross(q, tol, A, C)[:, :SWEEP_ZONE],
             5: _cross(q, tol, B, C)[:, :SWEEP_ZONE]}
    zones[5] = np.concatenate([zones[5], -zones[5]], axis=1)
    q_max = q[-1] * 1.01
    w = float(np.median(slope[: min(ix.FIRST, q.size)] * ix.TOL_LOOSE))
    tol_n = slope * ix.TOL_2THETA
    sweeps, owners, terms = [], [], []
    for j, (u, v) in {5: (3, 4), 4: (3, 5), 3: (4, 5)}.items():
        nu, nv = zones[u].shape[1], zones[v].shape[1]
        P = np.zeros((trip.shape[0], nu, nv, 6))
        P[..., 0], P[..., 1], P[..., 2] = (x[:, None, None] for x in (A, B, C))
        P[..., u] = zones[u][:, :, None]
        P[..., v] = zones[v][:, None, :]
        P = ix._unique_rows(P.reshape(-1, 6))
        P = P[plausible(P, q_max)]                   # with the third term at 0
        if len(P) == 0:
            continue
        P = P[np.argsort(-_zone_score(q, tol, P, j), kind="stable")[:SWEEP_PARTIAL]]
        a, b = {3: (0, 1), 4: (0, 2), 5: (1, 2)}[j]
        for row in P:
            bound = 2.0 * np.sqrt(row[a] * row[b]) * CROSS_RATIO
            vals = np.arange(0.0 if j in (3, 4) else -bound, bound, w / 2)   # D, E ≥ 0 by the axes' signs
            R = np.repeat(row[None], vals.size, axis=0)
            R[:, j] = vals
            sweeps.append(R)
            owners.append(np.full(vals.size, len(owners)))
            terms.append(j)
    if not sweeps:
        return np.zeros((0, 6))
    R, own = np.concatenate(sweeps), np.concatenate(owners)
    ok = plausible(R, q_max)
    R, own = R[ok], own[ok]
    err, _, n_calc = score_tric(R, q, tol, q_max, want_coef=False)
    sc = ix._figure(err, tol, n_calc, q_max) * (err <= 1.0).mean(axis=1) ** 4
    picks = []
    for o in np.unique(own):
        m = np.flatnonzero(own == o)
        picks.extend(m[np.argsort(-sc[m])[:SWEEP_KEEP]])
    base = R[picks]
    js = np.asarray(terms)[own[picks]]
    steps = np.linspace(-w / 2, w / 2, 9)
    R2 = np.repeat(base, steps.size, axis=0)
    R2[np.arange(len(R2)), np.repeat(js, steps.size)] += np.tile(steps, len(base))
    ok2 = plausible(R2, q_max)
    e2, _, n2 = score_tric(R2, q, tol_n, q_max, want_coef=False)
    s2 = np.where(ok2, ix._figure(e2, tol_n, n2, q_max) * (e2 <= 1.0).mean(axis=1) ** 4, -1.0)
    best = s2.reshape(len(base), steps.size).argmax(axis=1)
    return R2.reshape(len(base), steps.size, 6)[np.arange(len(base)), best]


TRIALS = {"hough": hough_trials, "half": half_trials, "sweep": sweep_trials}


def fit_tric_with(q, slope, trials=None):
    """lattice_fit's aP cell, or with ``trials`` the better (M·f⁴) of it and the cell the same search
    finds from those trial rows alone (ranked apart, so they cannot push the shipped trials out)."""
    from crystalmela_lattice_fit.triclinic import fit_tric
    shipped = fit_tric(q, slope)
    if trials is None:
        return shipped
    other = fit_tric(q, slope, trials=trials)
    return other if other[3] is not None and other[0] * other[1] ** 4 > shipped[0] * shipped[1] ** 4 else shipped


MISSED_LISTED = {"aP": "triclinic", "oP": "orthorhombic"}   # crystals listed when the search misses their lattice


def found_own(M, f, own) -> bool:
    """A search found the crystal's lattice, as far as the peaks tell: M at least 0.8 of the own cell's
    and 95 % of the peaks indexed."""
    return M >= 0.8 * own[0] and f >= 0.95


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--lab", action="store_true", help="lab-condition renderings (eval_holdout's; with "
                    "--data, the training augmentation's)")
    ap.add_argument("--data", type=Path, help="a built data set's val rows instead of CIFs")
    ap.add_argument("--n", type=int, default=2000, help="val rows of --data (default 2000)")
    ap.add_argument("--seeded", action="store_true", help="refine from the oP cell instead (first idea)")
    ap.add_argument("--trials", choices=sorted(TRIALS), help="also search aP cells from these trial rows")
    args = ap.parse_args(argv)
    if bool(args.dirs) == bool(args.data):
        ap.error("give either CIF folders or --data DATA")
    if args.n < 1:
        ap.error(f"--n must be at least 1, got {args.n}")
    from crystalmela.errors import CrystalmelaError
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit.monoclinic import fit_mono_four_line
    from crystalmela_lattice_fit.plugin import pick_peaks
    import time
    source = _data_patterns(args.data, args.n, args.lab) if args.data else _cif_patterns(args.dirs, args.lab)
    res = defaultdict(list)
    missed = {kind: [] for kind in MISSED_LISTED}
    spent = tric_spent = 0.0
    try:
        items = list(source)
    except CrystalmelaError as exc:
        print(f"--data {args.data}: {exc}", file=sys.stderr)
        return 2
    for name, system, cell, pattern in items:
        if system == "monoclinic":
            system += " β≤5°" if np.abs(np.asarray(cell[3:]) - 90).max() <= 5 else " β>5°"
        tt = np.sort(pick_peaks(pattern))[:ix.N_OBS]
        if tt.size < 6:
            continue
        q, slope = ix.peaks_q(tt, pattern.wavelength)
        Mo, fo, _, po, _ = ix.ortho_search(q, slope)
        t0 = time.perf_counter()
        Mm, fm, _, _, _ = fit_mono(q, slope, po) if args.seeded else fit_mono_four_line(q, slope)
        t1 = time.perf_counter()
        Ma, fa, _, _, _ = fit_tric_with(q, slope, TRIALS.get(args.trials))
        spent, tric_spent = spent + t1 - t0, tric_spent + time.perf_counter() - t1
        found = {}
        for kind, (M, f) in (("aP", (Ma, fa)), ("mP", (Mm, fm)), ("oP", (Mo, fo))):
            own = own_cell_figure(cell, q, slope, kind)
            found[kind] = bool(found_own(M, f, own)) if own[1] >= 0.95 else np.nan
            if found[kind] is False and system == MISSED_LISTED.get(kind):
                missed[kind].append(f"{name} (M {M:.0f}, {f:.0%} indexed; own cell M {own[0]:.0f})")
        res[system].append((np.log10(max(Mo, 1e-3)), fo >= 0.999, np.log10(max(Mm, 1e-3)), fm >= 0.999,
                            np.log10(max(Ma, 1e-3)), fa >= 0.999, found["aP"], found["mP"], found["oP"]))
    if not res:
        print(f"no readable crystal with 6 or more peaks under {', '.join(map(str, args.dirs or [args.data]))}",
              file=sys.stderr)
        return 2
    print(f"{'lab' if args.lab else 'clean'}{f'; {len(items)} val rows of {args.data}' if args.data else ''}")
    print(f"{'system':18s}    n  oP full  mP full  mP not oP  log10 M oP / mP  mP full, M > 10  "
          "aP full, M > 10  aP not mP  own lattice aP (n)  mP (n)  oP (n)")
    for system, rows in sorted(res.items()):
        v = np.array(rows, float)
        ap = v[:, 5].astype(bool) & (v[:, 4] > 1)
        own = [f"{np.nanmean(v[:, k]):.2f} ({np.sum(~np.isnan(v[:, k]))})" if np.any(~np.isnan(v[:, k])) else "-"
               for k in (6, 7, 8)]
        print(f"{system:18s} {len(v):4d}  {v[:, 1].mean():7.2f}  {v[:, 3].mean():7.2f}  "
              f"{np.mean(v[:, 3] > v[:, 1]):9.2f}  {np.median(v[:, 0]):6.2f} / {np.median(v[:, 2]):5.2f}  "
              f"{np.mean(v[:, 3].astype(bool) & (v[:, 2] > 1)):15.2f}  {ap.mean():15.2f}  "
              f"{np.mean(ap & ~v[:, 3].astype(bool)):9.2f}  {own[0]:>18s}  {own[1]:>6s}  {own[2]:>6s}")
    for kind, names in missed.items():
        if names:
            print(f"{MISSED_LISTED[kind]}, own lattice missed by the {kind} search ({len(names)}): " + "; ".join(names))
    n = sum(len(r) for r in res.values())
    print(f"mP search: {spent / n * 1e3:.1f} ms, aP search: {tric_spent / n * 1e3:.1f} ms a pattern (mean of {n}; "
          f"the oP column is lattice_fit's current search, ORTHO_MAX {ix.ORTHO_MAX})")
    return 0


def _cif_patterns(dirs, lab):
    """(name, crystal system, cell, pattern) of each readable CIF: clean, or eval_holdout's
    lab-condition model."""
    sys.path.insert(0, str(Path(__file__).parent))
    from eval_holdout import cif_patterns
    for path, crystal, pattern in cif_patterns(dirs, lab):
        yield path.stem, crystal.crystal_system, tuple(crystal.cell), pattern


def _data_patterns(data, n, lab, batch=500):
    """The same for ``n`` seeded val rows of a built data set (the full set), rendered as lattice_fit's
    training renders them (``lab``: under the default training augmentation)."""
    from crystalmela.augment import AugmentSettings
    from crystalmela.errors import CrystalmelaError
    from crystalmela.systems import CRYSTAL_SYSTEMS
    from crystalmela.training import TrainRequest
    req = TrainRequest(name="lattice_fit", version="-", feature="lattice_fit", dataset="full", data=data,
                       out_dir=data, augment=AugmentSettings() if lab else None, progress=False)
    rset = req.reflections("val")
    if rset.cell is None:
        raise CrystalmelaError("this build stores no cells (format crystalmela-reflections/1); rebuild it")
    idx = np.sort(np.random.default_rng(0).permutation(len(rset))[:n])
    for start in range(0, len(idx), batch):
        chunk = idx[start:start + batch]
        for i, pattern in zip(chunk, req.patterns(rset, chunk)):
            yield str(rset.ids[i]), CRYSTAL_SYSTEMS[int(rset.labels[i])], tuple(rset.cell[i]), pattern


if __name__ == "__main__":
    sys.exit(main())
