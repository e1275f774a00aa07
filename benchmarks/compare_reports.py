"""Two ``eval_holdout.py --json`` reports side by side, structure by structure: is a candidate better
than the shipped models beyond what the hold-out's size leaves open?

    python benchmarks/compare_reports.py BASE CANDIDATE [--model ensemble] [--mode calibrated|raw]

For each condition both reports hold (clean, lab), on the structures both scored: top-1 and top-2 of
``--model`` (default the ensemble) in each, with 95 % Wilson intervals; the structures only one of
them gets right, with the exact McNemar p-value of that split (paired: the structures both get right
or both miss say nothing about which is better); and those structures by name, ``+`` where the
candidate is right. On a few hundred structures a difference of two or three is noise (p near 1); a
claim that a change helps needs p well below 0.05, or it stays "within noise". Reads the reports only.
Exit 2 with the reason for a file that is not such a report, a model neither has, reports that give
one structure two systems, or reports with no condition or structure in common.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from holdout_misses import load, ranks  # noqa: E402  (one reader of the report format)


def compare(base: dict, cand: dict, labels: dict) -> dict:
    """Top-k rates, intervals and paired tests of two {structure: probabilities} dicts on their
    common structures."""
    from crystalmela.metrics import paired_test, rate_interval
    rb, rc = ranks(base, labels), ranks(cand, labels)
    names = sorted(set(rb) & set(rc))
    out = {"n": len(names)}
    if not names:
        return out
    for k, key in ((1, "top1"), (2, "top2")):
        right_b = [rb[n] < k for n in names]
        right_c = [rc[n] < k for n in names]
        out[key] = {"base": sum(right_b) / len(names), "candidate": sum(right_c) / len(names),
                    "base_interval": rate_interval(sum(right_b), len(names)),
                    "candidate_interval": rate_interval(sum(right_c), len(names)),
                    **paired_test(right_b, right_c),
                    "gained": [n for n, b, c in zip(names, right_b, right_c) if c and not b],
                    "lost": [n for n, b, c in zip(names, right_b, right_c) if b and not c]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path, help="eval_holdout.py --json report of the reference models")
    ap.add_argument("candidate", type=Path, help="the report to compare with it")
    ap.add_argument("--model", default="ensemble", help="ensemble (default) or one model's name")
    ap.add_argument("--mode", default="calibrated", choices=["calibrated", "raw"])
    args = ap.parse_args(argv)
    loaded = []
    for path in (args.base, args.candidate):
        try:
            loaded.append(load(path, args.mode, args.model))
        except ValueError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
    (labels_b, conds_b), (labels_c, conds_c) = loaded
    clash = sorted(n for n in set(labels_b) & set(labels_c) if labels_b[n] != labels_c[n])
    if clash:
        n = clash[0]
        print(f"the reports disagree on {len(clash)} structure(s)' system, e.g. {n}: "
              f"{labels_b[n]} in {args.base}, {labels_c[n]} in {args.candidate}", file=sys.stderr)
        return 2
    conds = [c for c in conds_b if c in conds_c]
    if not conds:
        print(f"no condition in common: {args.base} has {', '.join(conds_b)}, {args.candidate} has "
              f"{', '.join(conds_c)}", file=sys.stderr)
        return 2
    labels = labels_b | labels_c
    results = {c: compare(conds_b[c], conds_c[c], labels) for c in conds}
    empty = [c for c, r in results.items() if r["n"] == 0]
    if empty:
        print(f"no structure in common for {', '.join(empty)}", file=sys.stderr)
        return 2
    print(f"{args.model} ({args.mode}): base {args.base}, candidate {args.candidate}")
    for cond, r in results.items():
        print(f"{cond}: {r['n']} structures in both")
        for key, title in (("top1", "top-1"), ("top2", "top-2")):
            t = r[key]
            (a, b), (c, d) = t["base_interval"], t["candidate_interval"]
            print(f"  {title}: base {t['base']:.3f} ({a:.3f}–{b:.3f}), candidate {t['candidate']:.3f} "
                  f"({c:.3f}–{d:.3f}); only base right {t['only_a']}, only candidate right "
                  f"{t['only_b']}: exact McNemar p = {t['p_value']:.2f}")
            for sign, group in (("+", t["gained"]), ("-", t["lost"])):
                for n in group:
                    print(f"    {sign} {Path(n).stem[:44]:44s} {labels[n]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
