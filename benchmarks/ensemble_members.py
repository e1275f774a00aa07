"""Which installed models are worth combining: each model alone and every ensemble of two or more,
scored on the same val-split patterns (the ensemble's default weighted geometric mean, each model at
its fitted temperature, as ``predict`` combines them).

    python benchmarks/ensemble_members.py DATA_DIR [--dataset full] [--n 4000] [--augment lab|none]

DATA_DIR is a ``crystalmela dataset build`` folder; patterns are rendered under lab conditions by
default, as ``crystalmela calibrate`` fits the ensemble's temperature. Prints top-1, top-2 and
balanced accuracy per member set, best top-1 first.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import bad_input_exits_2  # noqa: E402


@bad_input_exits_2
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--dataset", default="full", choices=["full", "organic", "inorganic"])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--augment", default="lab", choices=["lab", "none"])
    args = ap.parse_args(argv)
    from crystalmela.augment import AugmentSettings
    from crystalmela.calibration import val_probabilities
    from crystalmela.metrics import classification_metrics
    from crystalmela.plugins import get_registry
    from crystalmela.predict import combine_rows

    reg = get_registry()
    augment = AugmentSettings() if args.augment == "lab" else None
    probs, y, _ = val_probabilities(args.dataset, args.data, n=args.n, augment=augment, registry=reg)
    names = sorted(probs)
    rows = []
    for k in range(1, len(names) + 1):
        for members in itertools.combinations(names, k):
            p = probs[members[0]] if k == 1 else combine_rows({m: probs[m] for m in members},
                                                              args.dataset, registry=reg)
            met = classification_metrics(y, p)
            rows.append((met["accuracy"], met["top2_accuracy"], met["balanced_accuracy"], members))
    print(f"{len(y)} val patterns of {args.data} ({args.dataset}, {args.augment} rendering)")
    print("top-1  top-2  balanced  members")
    for acc, top2, bal, members in sorted(rows, key=lambda r: -r[0]):
        print(f"{acc:.3f}  {top2:.3f}  {bal:.3f}     {' + '.join(members)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
