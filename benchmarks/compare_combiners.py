"""Arithmetic against geometric mean of the installed models' probabilities, on val-split patterns.

    python benchmarks/compare_combiners.py DATA_DIR [--dataset full] [--n 4000]

Both on clean val patterns and on lab-condition augmented ones (the default AugmentSettings), each
model at its fitted temperature, the same rows for every model. Prints top-1, top-2, NLL and ECE of
each rule before any ensemble temperature (which does not change the ranking). Val data, so a choice
made here is not tuned on the real-structure hold-out.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import bad_input_exits_2  # noqa: E402


@bad_input_exits_2
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--dataset", default="full")
    ap.add_argument("--n", type=int, default=4000)
    args = ap.parse_args(argv)
    from crystalmela.augment import AugmentSettings
    from crystalmela.calibration import EPS, nll, val_probabilities
    from crystalmela.metrics import classification_metrics

    for label, augment in (("clean", None), ("augmented", AugmentSettings())):
        probs, y, _ = val_probabilities(args.dataset, args.data, n=args.n, augment=augment)
        stack = np.stack(list(probs.values()))
        mean = stack.mean(axis=0)
        geo = np.exp(np.log(np.clip(stack, EPS, 1.0)).mean(axis=0))
        geo /= geo.sum(axis=1, keepdims=True)
        for name, p in (*((m, probs[m]) for m in probs), ("arithmetic mean", mean), ("geometric mean", geo)):
            m = classification_metrics(y, p)
            print(f"{label:9s} {name:16s} top-1 {m['accuracy']:.3f}  top-2 {m['top2_accuracy']:.3f}  "
                  f"NLL {nll(p, y):.3f}  ECE {m['ece']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
