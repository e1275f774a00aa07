"""Patterns read + regridded per second for a 10k-point XY file, against a plain numpy baseline.

    python benchmarks/bench_read_regrid.py [--repeat 200]

Baseline: ``numpy.loadtxt`` + ``numpy.interp`` onto the 4501-point grid + max-normalisation — what a
script without validation, format detection, wavelength conversion or clear errors would do. The figure
to watch is the ratio (crystalmela / baseline), measured in the same process on the same file.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_file(d: Path) -> Path:
    rng = np.random.default_rng(0)
    x = np.linspace(5, 105, 10_000)
    y = 50 + rng.poisson(20, x.size).astype(float)
    for c in rng.uniform(8, 100, 40):
        y += 1000 * rng.random() * np.exp(-((x - c) / 0.05) ** 2)
    p = d / "bench.xy"
    np.savetxt(p, np.column_stack([x, y]), fmt="%.4f", header="2theta intensity")
    return p


def rate(fn, repeat: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return repeat / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()

    import crystalmela
    from crystalmela import PAPER_GRID
    from crystalmela.pipeline.reading import read_pattern

    registry = crystalmela.get_registry()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_file(Path(tmp))
        grid_x = PAPER_GRID.two_theta

        def baseline():
            a = np.loadtxt(path)
            y = np.interp(grid_x, a[:, 0], a[:, 1], left=0, right=0)
            return y * (1000 / y.max())

        def ours():
            return read_pattern(path, registry=registry).to_grid(PAPER_GRID, wavelength=1.54056)

        b = rate(baseline, args.repeat)
        c = rate(ours, args.repeat)
    print(f"file: 10,000-point XY; grid: {PAPER_GRID.n_points} points; repeat {args.repeat}")
    print(f"baseline loadtxt+interp : {b:8.1f} patterns/s")
    print(f"crystalmela read+regrid : {c:8.1f} patterns/s")
    print(f"ratio (crystalmela / baseline): {c / b:.2f}")


if __name__ == "__main__":
    main()
