"""Augmented rendering speed against the plain renderer, same rows, same process.

    python benchmarks/bench_augment.py DATA_DIR [--rows 2048] [--batch 256]

DATA_DIR is a ``crystalmela dataset build`` folder (format /2, so preferred orientation runs). Prints
ms per pattern for ``render_batch`` (the paper's constant-width profile) and for
``TrainRequest.render`` with the default AugmentSettings (clean share included), and their ratio.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import bad_input_exits_2  # noqa: E402


@bad_input_exits_2
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args(argv)
    from crystalmela.simulation.augment import AugmentSettings
    from crystalmela.dataset.store import load_reflections, render_batch
    from crystalmela.training.request import TrainRequest

    rset = load_reflections(args.data, "full", "train")
    rows = np.random.default_rng(0).permutation(len(rset))[: args.rows]
    req = TrainRequest(name="bench", version="0", feature="profile", dataset="full", data=args.data,
                       out_dir=args.data, augment=AugmentSettings(), progress=False)
    batches = [rows[i:i + args.batch] for i in range(0, len(rows), args.batch)]
    req.render(rset, batches[0])                       # imports, FFT plans, transfer table
    render_batch(rset, batches[0])
    times = {}
    for name, fn in (("plain", lambda b: render_batch(rset, b)), ("augmented", lambda b: req.render(rset, b))):
        t = time.perf_counter()
        for b in batches:
            fn(b)
        times[name] = (time.perf_counter() - t) / len(rows) * 1e3
        print(f"{name:10s} {times[name]:.3f} ms / pattern")
    print(f"augmented / plain: {times['augmented'] / times['plain']:.1f}x "
          f"({len(rows)} rows in batches of {args.batch}, format {rset.manifest.get('format')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
