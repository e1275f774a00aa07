"""Malformed, adversarial and junk files in every format through read + predict: nothing may crash,
run away, answer junk confidently, or refuse a valid file.

    python benchmarks/fuzz_readers.py [--models NAME,...] [--quick] [--seed 0] [--measured DIR] [--json]

Samples: the real instrument files (``tests/data/real``, ``examples/``) and, for every format the
test writers know (``tests/writers.py``), a lab-like simulated pattern (a synthetic crystal through
the hold-out's fixed lab model, 10–85° in 0.05° steps) written in that format. From each sample:

- **malformed**: truncated to 0 / 1 byte / 10 / 50 / 90 / 99 %, and 1, 10, 100 and 1000 random bit
  flips (seeded) — each must give a result or a one-line error, never a crash;
- **valid** re-encodings (CR-only line ends, UTF-16 and UTF-32 with a byte-order mark, 70 KB of
  leading comments, Fortran ``D`` exponents): each must be read and answered;
- **synthetic** patterns: 100 inorganic and 100 organic synthetic crystals simulated clean, lab-like,
  lab-like cut to a 35–70° window and lab-like at a 0.08° step, through the gate: none may be refused;
- **junk** patterns (3, 5 and 10 points, uniform and counting noise, a ramp, 2θ in radians, all
  counts negative, UXD and FullProf files cut to 10 %, ten high bits flipped in a RAW's counts):
  each must be refused or answered ``unsure``.

Verdicts: read error, refused (by the data-quality gate), unsure (the gate's reasons), low confidence
(unsure only because the ensemble's top-1 is below 0.5), answered, crash. Junk counts as caught only
when refused, unreadable or flagged by the gate. A crash is any exception that is not crystalmela's own error, a "reader failed unexpectedly"
message, or an error of more than one line. Each variant's time and traced peak memory
(``tracemalloc``, NumPy's arrays included) are measured; over 30 s or 1 GB counts against it.
``--measured DIR`` also runs the gate over the measured patterns in DIR and counts its verdicts —
a measurement of the hold-out, never used to set a threshold. ``--quick`` takes a seeded subset
(what ``tests/test_fuzz.py`` runs). Exit status 1 if any of the four counts is not 0.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))          # the format writers

MAX_S, MAX_BYTES = 30.0, 1 << 30


def _lab_profile(seed: int) -> tuple[np.ndarray, np.ndarray]:
    from crystalmela.evaluation.holdout import lab_pattern
    from crystalmela.simulation.synthetic import generate
    crystal = next(iter(generate(1, "inorganic", seed=seed)))
    p = lab_pattern(crystal, np.random.default_rng(seed))
    x = np.round(np.arange(10.0, 85.0, 0.05), 4)
    return x, np.round(np.interp(x, p.x, p.y), 0)


def samples(folder: Path, seed: int) -> dict[str, Path]:
    """Every sample file: the real ones and a lab-like pattern written in each format."""
    import writers
    out = {}
    for f in sorted((ROOT / "tests" / "data" / "real").iterdir()):
        if f.suffix.lower() in (".raw", ".uxd", ".dat"):
            out[f"real {f.name}"] = f
    x, y = _lab_profile(seed)
    old = writers.X, writers.Y
    writers.X, writers.Y = x, y
    try:
        for case, (write, fname, _, _) in sorted(writers.CASES.items()):
            path = folder / "samples" / case / fname
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path)
            out[f"written {case}"] = path
    finally:
        writers.X, writers.Y = old
    return out


def _is_text(raw: bytes) -> bool:
    return b"\x00" not in raw[:4096] and not raw.startswith(b"PK")


def variants(sample: str, path: Path, rng: np.random.Generator):
    """(kind, name, bytes, file name) for one sample."""
    raw = path.read_bytes()
    for frac in (0.0, None, 0.1, 0.5, 0.9, 0.99):
        cut = 1 if frac is None else int(len(raw) * frac)
        yield "malformed", f"{sample}: truncated to {cut} bytes", raw[:cut], path.name
    for flips in (1, 10, 100, 1000):
        b = bytearray(raw)
        for i in rng.integers(0, len(b) * 8, flips):
            b[i // 8] ^= 1 << (i % 8)
        yield "malformed", f"{sample}: {flips} bit flips", bytes(b), path.name
    if _is_text(raw):
        text = raw.decode("latin-1")
        yield "valid", f"{sample}: CR-only line ends", raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r"), path.name
        for codec in ("UTF-16", "UTF-32"):      # XML names its encoding: the declaration follows it
            wide = text.replace('encoding="UTF-8"', f'encoding="{codec}"').encode(codec.lower())
            yield "valid", f"{sample}: {codec} with BOM", wide, path.name


def xy_bytes(x, y) -> bytes:
    return "".join(f"{a:.5f} {b:.3f}\n" for a, b in zip(x, y)).encode()


def junk_and_valid_xy(rng: np.random.Generator, real: Path):
    """Pattern-level junk, and valid column files the earlier readers refused."""
    from crystalmela.pipeline.reading import read_pattern
    p = read_pattern(real)
    x = np.arange(5, 90, 0.02)
    for n in (3, 5, 10):
        yield "junk", f"{n} points", xy_bytes(np.linspace(10, 80, n), rng.random(n) * 100), "few.xy"
    yield "junk", "uniform noise", xy_bytes(x, rng.random(x.size) * 1000), "noise.xy"
    yield "junk", "counting noise", xy_bytes(x, rng.poisson(200, x.size)), "poisson.xy"
    yield "junk", "a straight ramp", xy_bytes(x, 10 * x), "ramp.xy"
    yield "junk", "2θ in radians", xy_bytes(np.radians(p.x), p.y), "radians.xy"
    yield "junk", "all counts negative", xy_bytes(p.x, -p.y - 1), "negative.xy"
    uxd = (ROOT / "tests" / "data" / "real" / "LiCoO2.UXD").read_bytes()
    yield "junk", "UXD cut to 10 %", uxd[: len(uxd) // 10], "cut.uxd"
    dat = (ROOT / "tests" / "data" / "real" / "LiCoO2.dat").read_bytes()
    yield "junk", "FullProf cut to 10 %", dat[: len(dat) // 10], "cut.dat"
    raw = bytearray(real.read_bytes())
    first = p.y[:4].astype("<f4").tobytes()
    at = bytes(raw).find(first)
    if at >= 0:                       # ten counts within 16–88° × 2⁶⁴: an exponent bit flipped
        for k in rng.choice(np.arange(100, 2400), 10, replace=False):
            raw[at + 4 * int(k) + 3] ^= 0x20
        yield "junk", "RAW with ten high bits flipped", bytes(raw), "flipped.RAW"
    yield "valid", "xy with 70 KB of leading comments", b"# a comment line of the instrument log ......\n" * 1500 \
        + xy_bytes(p.x, p.y), "comments.xy"
    yield "valid", "xy with Fortran D exponents", "".join(f"{a / 10:.6f}D+01 {b / 10:.4f}D+01\n"
                                                         for a, b in zip(p.x, p.y)).encode(), "fortran.xy"
    yield "valid", "xy with 2θ descending", xy_bytes(p.x[::-1], p.y[::-1]), "descending.xy"


def outcome(predictor, path: Path) -> tuple[str, str]:
    """(verdict, detail): read error, refused, unsure, answered or crash."""
    from crystalmela.pipeline.quality import QualityError
    from crystalmela.plugin_api.errors import CrystalmelaError
    try:
        pred = predictor.predict_path(path)
    except QualityError as exc:
        return "refused", str(exc)
    except CrystalmelaError as exc:
        msg = str(exc)
        if "unexpectedly" in msg or "\n" in msg:
            return "crash", msg
        return "read error", msg
    except Exception as exc:       # what the benchmark is here to find
        return "crash", f"{type(exc).__name__}: {exc}"
    if not pred.ok:
        return "read error", "; ".join(pred.errors.values()) or "no model answered"
    said = f"{pred.top1} {pred.ensemble[pred.top1]:.2f}"
    gate = [r for r in pred.unsure_reasons if not r.startswith("the ensemble gives")]
    if gate:
        return "unsure", f"{said}: " + "; ".join(gate)
    return ("low confidence" if pred.unsure else "answered"), said


def run(models: list[str] | None = None, quick: bool = False, seed: int = 0) -> dict:
    from crystalmela.pipeline.predictor import Predictor
    predictor = Predictor(models)
    rng = np.random.default_rng(seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="crystalmela-fuzz-") as tmp:
        folder = Path(tmp)
        todo = [v for name, path in samples(folder, seed).items() for v in variants(name, path, rng)]
        todo += list(junk_and_valid_xy(rng, ROOT / "examples" / "LiCoO2.RAW"))
        if quick:
            keep = sorted(rng.choice(len(todo), min(60, len(todo)), replace=False).tolist())
            todo = [todo[i] for i in keep if todo[i][0] == "malformed"] + [v for v in todo if v[0] != "malformed"]
        for i, (kind, name, data, fname) in enumerate(todo):
            path = folder / "variants" / str(i) / fname
            path.parent.mkdir(parents=True)
            path.write_bytes(data)
            tracemalloc.start()
            t = time.perf_counter()
            verdict, detail = outcome(predictor, path)
            seconds = time.perf_counter() - t
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rows.append({"kind": kind, "variant": name, "verdict": verdict, "detail": detail.replace(str(path), fname),
                         "seconds": round(seconds, 3), "peak_mb": round(peak / 1e6, 1)})
    by_kind: dict = {}
    for r in rows:
        by_kind.setdefault(r["kind"], {}).setdefault(r["verdict"], 0)
        by_kind[r["kind"]][r["verdict"]] += 1
    return {
        "variants": len(rows), "models": predictor.models, "by_kind": by_kind,
        "crashes": [r for r in rows if r["verdict"] == "crash"],
        "over_limits": [r for r in rows if r["seconds"] > MAX_S or r["peak_mb"] * 1e6 > MAX_BYTES],
        # stricter than "unsure": junk must be caught by the gate, not merely get a low top-1
        "junk_answered_without_unsure": [r for r in rows if r["kind"] == "junk"
                                         and r["verdict"] in ("answered", "low confidence")],
        "slowest_s": max(r["seconds"] for r in rows), "largest_peak_mb": max(r["peak_mb"] for r in rows),
        "rows": rows,
    } | _with_synthetic(rows, 12 if quick else 100, seed)


def _with_synthetic(rows: list, n: int, seed: int) -> dict:
    synthetic = gate_on_synthetic(n, seed)
    return {"gate_on_synthetic": {k: v for k, v in synthetic.items() if k != "refused"},
            "valid_refused": [r for r in rows if r["kind"] == "valid"
                              and r["verdict"] not in ("answered", "low confidence", "unsure")] + synthetic["refused"]}


def gate_on_synthetic(n: int, seed: int) -> dict:
    """The gate's verdicts on ``n`` inorganic and ``n`` organic synthetic crystals, each simulated
    clean, under the hold-out's lab model, lab-like cut to a 35–70° window, and lab-like at a 0.08°
    step: valid patterns, so none may be refused (the thresholds were set against these and junk)."""
    from crystalmela.evaluation.holdout import lab_pattern
    from crystalmela.pipeline.quality import QualityError, assess
    from crystalmela.plugin_api.pattern import Pattern
    from crystalmela.simulation.simulate import simulate
    from crystalmela.simulation.synthetic import generate
    rng = np.random.default_rng(seed)
    counts: dict = {}
    refused = []
    crystals = list(generate(n, "inorganic", seed=seed)) + list(generate(n, "organic", seed=seed + 1))
    for c in crystals:
        lab = lab_pattern(c, rng)
        lo = rng.uniform(3, 20)
        window = (lab.x >= lo) & (lab.x <= lo + rng.uniform(35, 70))
        for kind, pattern in (("clean", simulate(c)), ("lab", lab),
                              ("lab, cut", Pattern(lab.x[window], lab.y[window], wavelength=lab.wavelength)),
                              ("lab, 0.08° step", Pattern(lab.x[::4], lab.y[::4], wavelength=lab.wavelength))):
            try:
                verdict = "unsure" if assess(pattern).unsure else "passed"
            except QualityError as exc:
                verdict = "refused"
                refused.append({"kind": "valid", "variant": f"synthetic {kind}", "verdict": "refused",
                                "detail": str(exc), "seconds": 0.0, "peak_mb": 0.0})
            counts.setdefault(kind, {}).setdefault(verdict, 0)
            counts[kind][verdict] += 1
    return {"crystals": len(crystals), "by_kind": counts, "refused": refused}


def gate_on_measured(folder: Path) -> dict:
    """The gate's verdicts on the measured patterns under ``folder`` (no model is run)."""
    from crystalmela.pipeline.quality import QualityError, assess
    from crystalmela.pipeline.reading import read_pattern
    from crystalmela.plugin_api.errors import CrystalmelaError
    counts = {"passed": 0, "unsure": 0, "refused": 0, "unreadable": 0}
    listed = []
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() not in (".md", ".csv", ".json")):
        try:
            pattern = read_pattern(f)
        except CrystalmelaError:
            counts["unreadable"] += 1
            continue
        try:
            q = assess(pattern)
        except QualityError as exc:
            counts["refused"] += 1
            listed.append({"file": str(f.relative_to(folder)), "refused": str(exc)})
            continue
        counts["unsure" if q.unsure else "passed"] += 1
        if q.unsure:
            listed.append({"file": str(f.relative_to(folder)), "unsure": q.unsure})
    return {"folder": str(folder), **counts, "listed": listed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="comma-separated (default: every installed model)")
    ap.add_argument("--quick", action="store_true", help="a seeded subset (what the test suite runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--measured", type=Path, help="also count the gate's verdicts on the measured patterns here")
    ap.add_argument("--json", action="store_true", help="print every variant's row too")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    report = run(args.models.split(",") if args.models else None, args.quick, args.seed)
    if args.measured:
        report["gate_on_measured"] = gate_on_measured(args.measured)
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    shown = report if args.json else {k: v for k, v in report.items() if k != "rows"}
    print(json.dumps(shown, indent=1, ensure_ascii=False))
    bad = {k: len(report[k]) for k in ("crashes", "over_limits", "junk_answered_without_unsure", "valid_refused")}
    print("  ".join(f"{k}: {v}" for k, v in bad.items()))
    return 1 if any(bad.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
