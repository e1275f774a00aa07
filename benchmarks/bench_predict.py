"""Prediction latency: one pattern through all installed models, warm and cold.

    python benchmarks/bench_predict.py [PATTERN] [--repeat 50]

Warm: ``predict_pattern`` on an already-read pattern with models loaded (median of repeats), beside
the reference of reading + regridding the same file (the floor any prediction pays). Cold: wall time
of ``crystalmela predict FILE`` in a fresh process, beside ``python -c "import numpy"`` as the
interpreter-start reference. Targets (issue 4): warm ≤ 20 ms for the paper's three models, cold ≤ 3 s.
Warm latency is printed for the paper's three models, then for every installed model (lattice_fit's
trial indexing costs tens of milliseconds a pattern on its own).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import bad_input_exits_2  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@bad_input_exits_2
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pattern", nargs="?", default=str(ROOT / "examples" / "LiCoO2.RAW"))
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args(argv)
    from crystalmela.plugin_api.pattern import PAPER_GRID
    from crystalmela.plugins import get_registry
    from crystalmela.pipeline.predictor import predict_pattern
    from crystalmela.pipeline.reading import read_pattern

    reg = get_registry()
    installed = sorted(reg.classifiers)
    pattern = read_pattern(args.pattern)
    paper = [m for m in ("cnn_flax", "extra_trees", "random_forest") if m in installed]
    for models in ([paper, installed] if paper != installed else [installed]):
        pred = predict_pattern(pattern, models, "full", registry=reg)  # loads and compiles
        if pred.errors:
            print("errors:", pred.errors)
        warm, ref = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            predict_pattern(pattern, models, "full", registry=reg)
            warm.append(time.perf_counter() - t)
            t = time.perf_counter()
            read_pattern(args.pattern).to_grid(PAPER_GRID)
            ref.append(time.perf_counter() - t)
        w, r = statistics.median(warm) * 1e3, statistics.median(ref) * 1e3
        print(f"warm predict, {len(models)} models ({', '.join(models)}) + ensemble: {w:.1f} ms "
              f"(median of {args.repeat}); reference read + regrid: {r:.1f} ms; ratio {w / r:.1f}x")
    cmd = [str(Path(sys.executable).parent / "crystalmela"), "predict", args.pattern]
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=False)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy"], check=True)
    base = time.perf_counter() - t
    print(f"cold `crystalmela predict`: {cold:.2f} s; reference `python -c 'import numpy'`: "
          f"{base:.2f} s; ratio {cold / base:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
