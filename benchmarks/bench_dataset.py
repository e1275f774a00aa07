"""Data-set throughput: synthetic crystals and CIF folders → reflection lists, structures per second.

    python benchmarks/bench_dataset.py [--n 2000] [--cif DIR ...]

Reports, on this machine: generation alone, generation + reflection lists (one process), and a full
two-worker ``dataset build`` for synthetic and for CIF input; the reference in the same run is
pymatgen's CIF → XRD pattern rate on the same CIFs (issue 3 quotes pyxtal at ≈ 11 structures/s).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import bad_input_exits_2  # noqa: E402


@bad_input_exits_2
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--cif", action="append", default=[])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    from crystalmela.dataset import BuildSettings, build
    from crystalmela.simulation.diffraction import reflections
    from crystalmela.simulation.synthetic import generate

    for kind in ("organic", "inorganic"):
        t = time.perf_counter()
        crystals = generate(args.n // 2, kind, seed=0)
        tg = time.perf_counter() - t
        t = time.perf_counter()
        for c in crystals:
            reflections(c, min_relative=5e-4)
        tr = time.perf_counter() - t
        print(f"{kind:9s}: generate {len(crystals) / tg:7.0f}/s, generate + reflections "
              f"{len(crystals) / (tg + tr):6.0f}/s (one process)")
    with tempfile.TemporaryDirectory() as tmp:
        m = build(Path(tmp) / "syn", BuildSettings(synthetic=args.n, chunk_size=max(1, args.n // 8)),
                  workers=args.workers, progress=False)
        print(f"dataset build --synthetic {args.n}: {m['last_run']['structures_per_second']}/s with "
              f"{args.workers} workers, {m['bytes_per_structure']} bytes/structure")
        if args.cif:
            m = build(Path(tmp) / "cif", BuildSettings(cif_dirs=args.cif, chunk_size=50),
                      workers=args.workers, progress=False)
            n_cif = m["last_run"]["structures_written"]
            cif_rate = m["last_run"]["structures_per_second"]
            print(f"dataset build --cif: {n_cif} structures at {cif_rate}/s with {args.workers} "
                  f"workers, rejected {m['rejected']}")
            try:
                from pymatgen.analysis.diffraction.xrd import XRDCalculator
                from pymatgen.io.cif import CifParser
            except ImportError:
                return 0
            warnings.filterwarnings("ignore")
            calc = XRDCalculator("CuKa1")
            files = sorted(p for d in args.cif for p in Path(d).rglob("*.cif"))
            t, done = time.perf_counter(), 0
            for f in files:
                try:
                    calc.get_pattern(CifParser(str(f)).parse_structures(primitive=False)[0])
                    done += 1
                except Exception:
                    pass
            ref = done / (time.perf_counter() - t)
            print(f"reference, pymatgen CIF → pattern (one process): {ref:.1f}/s; "
                  f"ratio crystalmela build / pymatgen = {cif_rate / ref:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
