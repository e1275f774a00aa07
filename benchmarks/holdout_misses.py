"""The real-structure hold-out's misses, structure by structure, from an ``eval_holdout.py --json``
report: which structures the ensemble gets wrong, and where one model alone and the ensemble differ.

    python benchmarks/holdout_misses.py REPORT [--mode calibrated|raw] [--compare MODEL]

For each condition of the report (clean, lab): every structure the ensemble misses at top-1, marked
``top-2`` when its system is the second answer and ``MISS`` when not even that, with its system, the
probability and rank the ensemble gives that system, and the ensemble's first three answers. Then
the structures that ``--compare MODEL`` alone (default lattice_fit) gets right at top-1 and the
ensemble does not, and the reverse, each with the probability both give the true system: where the
other members help or hurt. Reads the report only (no rendering, no models), so a candidate's
report can be studied the same way. Misses are what to look at, not what to tune on: the hold-out
is never fitted.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

def load(path: Path, mode: str, model: str):
    """(labels, {condition: {structure: probabilities}}) of one model of a report ("ensemble" for the
    combined answer); raises ValueError saying what is missing."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"not a readable eval_holdout.py --json report ({exc})") from None
    if not isinstance(report, dict) or not isinstance(report.get("results"), dict):
        raise ValueError("not an eval_holdout.py --json report (no 'results' object)")
    labels, results = report.get("labels"), report["results"]
    if not isinstance(labels, dict):
        raise ValueError("no per-structure systems ('labels'): written by an eval_holdout.py older than "
                         "2026-12-01; run it again with --json")
    from crystalmela.systems import CRYSTAL_SYSTEMS
    unknown = {n: s for n, s in labels.items() if s not in CRYSTAL_SYSTEMS}
    if unknown:
        name, system = next(iter(unknown.items()))
        raise ValueError(f"labels: {system!r} is not a crystal system (structure {name})")
    out = {}
    for cond, modes in results.items():
        res = modes.get(mode) if isinstance(modes, dict) else None
        if not isinstance(res, dict) or "per_structure" not in res:
            raise ValueError(f"no per-structure probabilities for {cond}/{mode}; run eval_holdout.py "
                             "--json again")
        if model == "ensemble":
            out[cond] = res["ensemble_per_structure"]
        elif model in res["per_structure"]:
            out[cond] = res["per_structure"][model]
        else:
            raise ValueError(f"no model {model!r} in the report (it has "
                             f"{', '.join(sorted(res['per_structure']))})")
    return labels, out


def ranks(probs: dict, labels: dict) -> dict:
    """The rank (0 = first) each structure's probabilities give its own system."""
    from crystalmela.systems import CRYSTAL_SYSTEMS
    return {n: int(np.flatnonzero(np.argsort(-np.asarray(p), kind="stable")
                                  == CRYSTAL_SYSTEMS.index(labels[n]))[0])
            for n, p in probs.items() if n in labels}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="an eval_holdout.py --json report")
    ap.add_argument("--mode", default="calibrated", choices=["calibrated", "raw"])
    ap.add_argument("--compare", default="lattice_fit", metavar="MODEL")
    args = ap.parse_args(argv)
    from crystalmela.metrics import paired_test
    from crystalmela.systems import CRYSTAL_SYSTEMS
    try:
        labels, ensemble = load(args.report, args.mode, "ensemble")
        _, compared = load(args.report, args.mode, args.compare)
    except ValueError as exc:
        print(f"{args.report}: {exc}", file=sys.stderr)
        return 2
    ys = {n: CRYSTAL_SYSTEMS.index(s) for n, s in labels.items()}
    short = [s[:4] for s in CRYSTAL_SYSTEMS]       # as eval_holdout.py abbreviates them
    for cond, ens in ensemble.items():
        other = compared[cond]
        rank = ranks(ens, labels)
        names = list(rank)
        missed = [n for n in names if rank[n] > 0]
        print(f"{cond} ({args.mode}): ensemble misses {len(missed)} of {len(names)} at top-1, "
              f"{sum(rank[n] > 1 for n in missed)} at top-2")
        for n in sorted(missed, key=lambda n: (rank[n] < 2, labels[n], n)):
            p = np.asarray(ens[n])
            first = "  ".join(f"{short[i]} {p[i]:.2f}" for i in np.argsort(-p)[:3])
            print(f"  {'top-2' if rank[n] == 1 else 'MISS '} {Path(n).stem[:40]:40s} {labels[n]:12s} "
                  f"p {p[ys[n]]:.3f} rank {rank[n] + 1}   {first}")
        right = {n: r == 0 for n, r in ranks(other, labels).items() if n in rank}
        test = paired_test([right[n] for n in right], [rank[n] == 0 for n in right])
        print(f"  {args.compare} alone against the ensemble at top-1: exact McNemar p = "
              f"{test['p_value']:.2f} over the {test['only_a'] + test['only_b']} structures only one gets right")
        for title, pick in ((f"{args.compare} right, ensemble wrong", lambda n: right[n] and rank[n] > 0),
                            (f"ensemble right, {args.compare} wrong", lambda n: not right[n] and rank[n] == 0)):
            sel = [n for n in right if pick(n)]
            print(f"  {title}: {len(sel)}")
            for n in sel:
                print(f"    {Path(n).stem[:40]:40s} {labels[n]:12s} p(true) {args.compare} "
                      f"{other[n][ys[n]]:.2f}, ensemble {ens[n][ys[n]]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
