"""Measurement conditions of real scans beside the training augmentation's ranges: are the lab-like
training patterns as harsh as what diffractometers give?

    python benchmarks/scan_conditions.py FILE [FILE ...] [--peaks 8] [--augment FILE.json]

For each scan (read by the project's readers, as ``predict`` reads it): the step, the counts at the
strongest point, the background level (the highest point of the SNIP background that
``--preprocess background`` subtracts, over the maximum: the augmentation's ``background_level`` is
defined so), and the FWHM of the strongest peaks (``scipy.signal.peak_widths`` at half height above
that background; a Kα1/Kα2 doublet not resolved at low angle counts in it). Scans on a d or Q axis
are skipped (widths are in ° 2θ). Then,
for each figure, the share of training patterns that ``AugmentSettings`` (the defaults, or
``--augment``) renders at least as mildly, from the fields' own distributions: counts at least as
high, background at most as high (patterns drawn without background count as milder), low-angle
instrumental FWHM at most as broad (the ``fwhm`` field alone: size and strain broadening only add
to it). A share near 0 means the training conditions are almost all harsher than this scan; near 1,
milder. Reads files only; nothing is fitted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import bad_input_exits_2  # noqa: E402


def conditions(x: np.ndarray, y: np.ndarray, peaks: int) -> dict:
    """Step, maximum counts, background / maximum and the FWHM (° 2θ) of the strongest peaks."""
    from scipy.signal import find_peaks, peak_widths

    from crystalmela.preprocess import snip
    step = float(np.median(np.diff(x)))
    curve = snip(y, max(1, int(round(1.5 / step))))     # as `--preprocess background` estimates it
    top = float(y.max())
    net = y - curve
    found, _ = find_peaks(net, prominence=0.05 * net.max())
    strongest = found[np.argsort(-net[found])[:peaks]]
    strongest = strongest[np.argsort(x[strongest])]
    widths = peak_widths(net, strongest, rel_height=0.5)[0] * step
    return {"step": step, "max_counts": top, "background": float(curve.max()) / top if top > 0 else 0.0,
            "peaks": [(float(x[i]), float(w)) for i, w in zip(strongest, widths)]}


def _below(value: float, low: float, high: float) -> float:
    """P(X ≤ value) for X uniform on [low, high] (a point mass when low = high)."""
    if high <= low:
        return float(value >= low)
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def milder_share(settings, counts: float, background: float, fwhm: float) -> dict:
    """The share of augmented training patterns at least as mild as the scan, figure by figure:
    counts log-uniform (more is milder), background drawn with ``background_probability`` (none is
    milder), the low-angle ``fwhm`` uniform."""
    lo, hi = np.log(settings.counts)
    p_bg = settings.background_probability
    return {"counts": 1.0 - _below(float(np.log(max(counts, 1e-9))), lo, hi),
            "background": (1.0 - p_bg) + p_bg * _below(background, *settings.background_level),
            "fwhm": _below(fwhm, *settings.fwhm)}


@bad_input_exits_2
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--peaks", type=int, default=8, help="strongest peaks to measure (default 8)")
    ap.add_argument("--augment", help="a JSON file of AugmentSettings fields (default: the shipped ranges)")
    args = ap.parse_args(argv)
    from pydantic import ValidationError

    from crystalmela.augment import AugmentSettings
    from crystalmela.errors import settings_problem
    from crystalmela.reading import read_pattern
    try:
        settings = (AugmentSettings.model_validate_json(Path(args.augment).read_text()) if args.augment
                    else AugmentSettings())
    except OSError as exc:
        print(f"scan_conditions.py: --augment {args.augment}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"scan_conditions.py: --augment {args.augment}: {settings_problem(exc)}", file=sys.stderr)
        return 2
    if args.peaks < 1:
        print(f"scan_conditions.py: --peaks must be at least 1, got {args.peaks}", file=sys.stderr)
        return 2
    scans = [(f, read_pattern(f)) for f in args.files]      # every file read before anything is printed
    for f, pattern in scans:
        if pattern.axis != "2theta":
            print(f"{f}: a {pattern.axis} axis; widths are measured in ° 2θ, skipped")
            continue
        x, y = np.asarray(pattern.x, float), np.asarray(pattern.y, float)
        c = conditions(x, y, args.peaks)
        if not c["peaks"]:
            print(f"{f}: no peak stands 5 % above the background; nothing to measure")
            continue
        low = [w for t, w in c["peaks"] if t < 40] or [c["peaks"][0][1]]
        share = milder_share(settings, c["max_counts"], c["background"], float(np.median(low)))
        print(f"{f}: step {c['step']:.3f}°, {c['max_counts']:.0f} counts at the top, background "
              f"{c['background']:.3f} of it, median FWHM below 40° {np.median(low):.3f}°")
        print("  FWHM of the strongest peaks: " + ", ".join(f"{t:.2f}° {w:.3f}" for t, w in c["peaks"]))
        print(f"  training patterns at least as mild: counts {share['counts']:.2f}, background "
              f"{share['background']:.2f}, FWHM {share['fwhm']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
