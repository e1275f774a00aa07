"""Peak search on a scan as measured: background, candidates, clusters, profile fits.

1. The points are put on their own median step (most scans already are) in 2θ at the pattern's
   wavelength; nothing is cut at 90° or resampled to a model grid.
2. Background: SNIP (Ryan et al. 1988) on the LLS-transformed counts, log(log(√(y+1)+1)+1), which
   keeps weak peaks on a steep low-angle background from being clipped as background.
3. Candidates: minima of the smoothed second derivative, which also finds shoulders that are
   not maxima. A candidate must stand ``min_sigma`` noise σ above the background; a candidate
   where a stronger one's Kα2 line falls is that line, not a peak.
4. Candidates closer than three widths (plus the Kα2 split) form a cluster. Each cluster is fitted
   at once with pseudo-Voigt peaks (doublets when Kα2 is present) over a straight background
   (``profile.fit_cluster``). Peaks whose fitted height falls under the threshold are dropped and
   the cluster is fitted again.

Written here rather than imported: scipy.signal.find_peaks gives maxima, not fitted positions with
uncertainties, and no maintained Python library fits Kα doublets on measured powder data.
"""
from __future__ import annotations

import time
from functools import lru_cache

import numpy as np

from crystalmela.peaks.profile import fit_cluster, ka2_position, peak_height
from crystalmela.plugin_api.errors import PatternError
from crystalmela.plugin_api.pattern import Pattern, d_to_two_theta
from crystalmela.plugin_api.peaklist import Peak, PeakList, PeakSearchSettings, d_of

__all__ = ["LAB_LINES", "robust_noise", "search"]

# Kα1, Kα2 and the 2:1 Kα average (Å) of the laboratory anodes (Hölzer et al. 1997; International
# Tables C, Table 4.2.2.1)
LAB_LINES = {
    "Cu": (1.540593, 1.544427, 1.541874), "Co": (1.788965, 1.792850, 1.790260),
    "Fe": (1.936042, 1.939980, 1.937355), "Cr": (2.289760, 2.293663, 2.291061),
    "Mo": (0.709317, 0.713607, 0.710747), "Ag": (0.559422, 0.563813, 0.560886),
}
_MAD_SIGMA = 1.0 / (0.6745 * np.sqrt(2.0))


def robust_noise(y: np.ndarray) -> float:
    """Noise σ of a profile from its first differences (median absolute deviation ÷ 0.6745 √2):
    peaks occupy few points, so they barely move it."""
    d = np.diff(np.asarray(y, float))
    return float(np.median(np.abs(d - np.median(d)))) * _MAD_SIGMA if d.size else 0.0


def _lab_line(wavelength: float, tol: float = 0.0015) -> tuple[str, str] | None:
    """(anode, "ka1" | "average") when ``wavelength`` is a laboratory anode's Kα1 or Kα average,
    the nearer of the two (Cu's differ by only 0.0013 Å)."""
    near = min(((abs(wavelength - v), anode, kind) for anode, (ka1, _, avg) in LAB_LINES.items()
                for v, kind in ((ka1, "ka1"), (avg, "average"))), default=None)
    return (near[1], near[2]) if near and near[0] <= tol else None


def _snip_lls(y: np.ndarray, half_window: int) -> np.ndarray:
    from crystalmela.pipeline.preprocess import snip
    v = np.log(np.log(np.sqrt(np.clip(y, 0, None) + 1.0) + 1.0) + 1.0)
    b = snip(v, half_window)
    return (np.exp(np.exp(b) - 1.0) - 1.0) ** 2 - 1.0


def _smooth(y: np.ndarray, points: int) -> np.ndarray:
    from crystalmela.pipeline.preprocess import savgol
    return savgol(y, max(5, points | 1))


@lru_cache(maxsize=64)
def _noise_gain(points: int) -> float:
    """The share of a point's noise that the smoothing and second derivative pass, measured once
    per smoothing width on seeded unit noise."""
    return float(np.std(np.gradient(np.gradient(_smooth(np.random.default_rng(0).normal(size=4096), points)))))


def _width_guess(x: np.ndarray, net: np.ndarray, idx: np.ndarray, step: float) -> float:
    """Median full width at half height of the strongest few candidates (at least 3 steps)."""
    widths = []
    for i in idx[np.argsort(net[idx])[::-1][:8]]:
        half = net[i] / 2.0
        lo, hi = i, i
        while lo > 0 and net[lo] > half:
            lo -= 1
        while hi < net.size - 1 and net[hi] > half:
            hi += 1
        widths.append(x[hi] - x[lo])
    return float(max(3 * step, np.median(widths))) if widths else 3 * step


def _as_two_theta(pattern: Pattern, wavelength: float) -> np.ndarray:
    if pattern.axis == "2theta":
        return pattern.x
    with np.errstate(invalid="ignore"):
        return d_to_two_theta(pattern.d_spacing(), wavelength)


def search(pattern: Pattern, settings: PeakSearchSettings, wavelength: float | None = None) -> PeakList:
    """The fitted peaks of ``pattern`` (module docstring)."""
    if not isinstance(pattern, Pattern):
        raise PatternError(f"find_peaks needs a Pattern, got {type(pattern).__name__}")
    notes: list[str] = []
    wl = wavelength or pattern.wavelength
    source = "given" if wavelength else "file"
    if wl is None:
        wl, source = LAB_LINES["Cu"][0], "assumed (Cu Kα1)"
        notes.append("wavelength not given: Cu Kα1 assumed")
    line = _lab_line(wl)
    lam_ratio = None
    if settings.ka2 == "yes" or (settings.ka2 == "auto" and line is not None):
        anode = line[0] if line else "Cu"
        ka1, ka2, _ = LAB_LINES[anode]
        if line and line[1] == "average":
            notes.append(f"λ {wl:g} Å is the {anode} Kα average: positions refer to Kα1 {ka1:g} Å")
            wl = ka1
        lam_ratio = ka2 / ka1 if line or settings.ka2 == "yes" else None

    tt = _as_two_theta(pattern, wl)
    ok = np.isfinite(tt)
    tt, y = tt[ok], pattern.y[ok]
    order = np.argsort(tt)
    tt, y = tt[order], y[order]
    if tt.size < 20:
        raise PatternError(f"{tt.size} points: too few to search for peaks")
    step = float(np.median(np.diff(tt)))
    if step <= 0:
        raise PatternError("the 2θ steps are zero")
    x = np.arange(tt[0], tt[-1] + step / 2, step)
    if x.size > 4 * tt.size or x.size > 2_000_000:
        raise PatternError(f"the 2θ steps are too irregular to search (median {step:.4g}° over "
                           f"{tt[0]:.2f}–{tt[-1]:.2f}°)")
    y = np.interp(x, tt, y)

    counts = bool(np.all(y >= 0) and np.allclose(y, np.round(y)) and y.max() > 20)
    bg = _snip_lls(y, max(3, int(round(settings.background_window_deg / step))))
    net = y - bg
    sigma_noise = max(robust_noise(y), 1e-6 * max(float(np.ptp(y)), 1e-12))
    sigma_pt = np.sqrt(np.maximum(y, 1.0)) if counts else np.full(y.size, sigma_noise)

    threshold = settings.min_sigma * sigma_noise
    rough = _smooth(net, 5)
    from crystalmela.plugin_api.peaks import local_maxima
    maxima = local_maxima(rough)
    maxima = maxima[rough[maxima] > threshold]
    if maxima.size == 0:
        return PeakList(source=pattern.source, wavelength=wl, wavelength_source=source, ka2=lam_ratio is not None,
                        noise_sigma=sigma_noise, peaks=[], notes=notes + ["no peak above the noise"])
    fwhm = _width_guess(x, rough, maxima, step)
    points = int(round(0.7 * fwhm / step))
    sm = _smooth(net, points)
    d2 = np.gradient(np.gradient(sm))
    gain = _noise_gain(points)
    cand = local_maxima(-d2)
    # against the noise where the candidate is (√counts on a strong peak, not the background's σ), so
    # the noise on a strong peak's flanks does not become peaks
    cand = cand[(sm[cand] > np.maximum(threshold, settings.min_sigma * sigma_pt[cand]))
                & (-d2[cand] > 3.0 * gain * sigma_pt[cand])]
    cand = cand[np.argsort(-sm[cand])]
    if lam_ratio is not None:     # a candidate at a stronger one's Kα2 position is that Kα2 line
        keep: list[int] = []
        for i in cand:
            if not any(abs(x[i] - float(ka2_position(x[j], lam_ratio))) < 0.4 * fwhm and sm[i] < 0.8 * sm[j]
                       for j in keep):
                keep.append(int(i))
        cand = np.array(keep, dtype=int)
    cand = np.sort(cand[: settings.max_peaks * 2])

    split = float(ka2_position(x[-1], lam_ratio) - x[-1]) if lam_ratio else 0.0
    clusters, current = [], [cand[0]] if cand.size else []
    for i in cand[1:]:
        if x[i] - x[current[-1]] < 3 * fwhm + split:
            current.append(i)
        else:
            clusters.append(current)
            current = [i]
    if current:
        clusters.append(current)

    clusters = [part for c in clusters for part in _split(c, x, MAX_CLUSTER)]
    peaks: list[Peak] = []
    started = time.perf_counter()
    for k, members in enumerate(clusters):
        if time.perf_counter() - started > settings.time_budget_s:
            rest = [i for c in clusters[k:] for i in c]
            notes.append(f"time budget ({settings.time_budget_s:g} s) spent after {k} of {len(clusters)} clusters: "
                         f"{len(rest)} peaks unfitted, placed at the smoothed profile's maxima (esd half a step)")
            peaks.extend(Peak(two_theta=float(x[i]), esd_two_theta=step / 2, d=d_of(float(x[i]), wl),
                              height=float(sm[i]), area=float(sm[i] * fwhm), fwhm=fwhm, eta=0.5,
                              snr=float(sm[i] / sigma_noise)) for i in rest)
            break
        peaks.extend(_fit(x, y, bg, sigma_pt, members, sm, fwhm, step, lam_ratio, settings, sigma_noise, wl))
    peaks.sort(key=lambda p: -p.height)
    if len(peaks) > settings.max_peaks:
        notes.append(f"{len(peaks)} peaks found; the strongest {settings.max_peaks} kept")
        peaks = peaks[: settings.max_peaks]
    peaks.sort(key=lambda p: p.two_theta)
    if not peaks:
        notes.append("no peak above the noise")
    return PeakList(source=pattern.source, wavelength=wl, wavelength_source=source, ka2=lam_ratio is not None,
                    noise_sigma=sigma_noise, peaks=peaks, notes=notes)


MAX_CLUSTER = 6      # peaks fitted together at most: a larger cluster is cut at its widest gaps


def _split(members: list, x: np.ndarray, most: int) -> list[list]:
    """``members`` in pieces of at most ``most``, cut where neighbours are furthest apart."""
    if len(members) <= most:
        return [members]
    gaps = np.diff(x[members])
    cut = int(np.argmax(gaps)) + 1
    return _split(members[:cut], x, most) + _split(members[cut:], x, most)


def _fit(x, y, bg, sigma_pt, members, sm, fwhm, step, lam_ratio, settings, sigma_noise, wl) -> list[Peak]:
    """Fit one cluster, drop peaks under the threshold and fit again (at most twice)."""
    members = list(members)
    for _ in range(3):
        lo = x[members[0]] - 3 * fwhm
        hi = x[members[-1]] + 3 * fwhm + (float(ka2_position(x[members[-1]], lam_ratio) - x[members[-1]])
                                          if lam_ratio else 0.0)
        w = (x >= lo) & (x <= hi)
        if w.sum() < 4 * len(members) + 3:
            return []
        out = fit_cluster(x[w], (y - bg)[w], sigma_pt[w], x[members], sm[members], fwhm, step, lam_ratio,
                          settings.ka2_ratio)
        if out is None:
            return []
        params, esd = out
        heights = np.array([peak_height(a, h, e) for _, a, h, e in params])
        strong = heights > settings.min_sigma * sigma_noise
        strong &= params[:, 2] < 3.9 * fwhm        # at the width bound: a profile's tail or a hump, not a peak
        inside = (params[:, 0] > x[0]) & (params[:, 0] < x[-1])
        good = strong & inside
        if good.all() or not good.any():
            break
        members = [m for m, g in zip(members, good) if g]
    return [Peak(two_theta=float(c), esd_two_theta=float(e[0]), d=d_of(float(c), wl), height=float(hgt),
                 area=float(a), fwhm=float(h), eta=float(eta), snr=float(hgt / sigma_noise))
            for (c, a, h, eta), e, hgt, g in zip(params, esd, heights, good) if g]
