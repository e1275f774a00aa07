"""Lab-like renderings of reflection lists for training: the measurement effects a real scan has and a
plain simulation lacks, each drawn per pattern from a documented range.

Order of the effects (each one's physics, and why its range, are in the field descriptions):

1. intensities: March–Dollase preferred orientation, averaged over each reflection's Laue-equivalent
   directions (needs the stored hkl, Hall symbol and cell of a format /2 data set);
2. positions: Cu Kα1 (+ Kα2 doublet), zero shift and sample displacement;
3. widths: Caglioti (U tan²θ + W) plus Scherrer crystallite-size broadening (∝ 1/cos θ), pseudo-Voigt;
4. scaled to the grid's maximum, then impurity peaks, a background (polynomial + low-angle exponential
   + amorphous hump) and counting noise (Poisson at a drawn peak count + Gaussian read-out);
5. a truncated 2θ range (zero outside, as ``Pattern.to_grid`` pads a short scan).

Rendering with an angle-dependent width: each row's sticks are binned on a fine grid in a few 2θ
segments, and each segment is convolved (FFT, with the pseudo-Voigt's analytic transform) with the
width at its centre. Cost ∝ points × segments rather than peaks × window, so a 200k-row set augments
in minutes on two cores.
"""
from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crystalmela.plugin_api.pattern import PAPER_GRID, GridSpec
from crystalmela.simulation.profiles import CU_KA2, lp_factor
from crystalmela.plugin_api.wavelengths import CU_KA1

Range = tuple[float, float]


def _range(default: Range, description: str):
    return Field(default, description=description)


class AugmentSettings(BaseModel):
    """Per-pattern ranges of every measurement effect; values are drawn uniformly unless stated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clean_fraction: float = Field(0.1, ge=0, le=1,
                                  description="share of patterns rendered plainly (paper profile)")
    ka2_probability: float = Field(0.8, ge=0, le=1, description="share with an unstripped Kα2 line")
    ka2_ratio: Range = _range((0.45, 0.55), "I(Kα2)/I(Kα1); 0.5 is the Cu tube value")
    fwhm: Range = _range((0.04, 0.25), "instrumental FWHM at low angle, ° 2θ (Caglioti √W)")
    caglioti_u: Range = _range((0.0, 0.04), "Caglioti U (°²): strain-like growth with tan²θ")
    size_probability: float = Field(0.4, ge=0, le=1, description="share with crystallite-size broadening")
    crystallite_nm: Range = _range((15.0, 300.0), "crystallite size (nm), log-uniform; Scherrer K = 0.9")
    eta: Range = _range((0.1, 0.9), "pseudo-Voigt Lorentzian fraction")
    zero_shift: Range = _range((-0.06, 0.06), "goniometer zero error, ° 2θ")
    displacement_mm: Range = _range((-0.15, 0.15), "sample height error s: Δ2θ = −2 s cos θ / R")
    goniometer_radius_mm: float = Field(240.0, gt=0)
    po_probability: float = Field(0.5, ge=0, le=1, description="share with preferred orientation")
    march_r: Range = _range((0.6, 1.5), "March–Dollase r, log-uniform (<1 plates, >1 needles)")
    background_probability: float = Field(0.9, ge=0, le=1)
    background_level: Range = _range((0.01, 0.4), "background maximum / strongest peak")
    hump_probability: float = Field(0.3, ge=0, le=1, description="share with an amorphous hump")
    hump_centre: Range = _range((12.0, 32.0), "amorphous hump centre, ° 2θ (glass, kapton, grease)")
    hump_fwhm: Range = _range((4.0, 14.0), "amorphous hump FWHM, ° 2θ")
    counts: Range = _range((300.0, 50_000.0), "counts in the strongest peak, log-uniform (Poisson)")
    readout_sigma: Range = _range((0.0, 0.004), "Gaussian read-out noise σ / strongest peak")
    impurity_probability: float = Field(0.25, ge=0, le=1)
    impurity_peaks: tuple[int, int] = Field((1, 3), description="number of impurity peaks")
    impurity_height: Range = _range((0.01, 0.08), "impurity peak height / strongest peak")
    truncate_probability: float = Field(0.25, ge=0, le=1)
    two_theta_start: Range = _range((5.0, 15.0), "first measured 2θ of a truncated scan (°)")
    two_theta_end: Range = _range((60.0, 90.0), "last measured 2θ of a truncated scan (°)")

    @model_validator(mode="after")
    def _ordered(self) -> "AugmentSettings":
        for name, value in self:
            if isinstance(value, tuple) and value[0] > value[1]:
                raise ValueError(f"{name}: range {value} must be (low, high)")
        return self


_SUB = 2          # fine-grid points per grid step
_SEGMENTS = 4     # constant-width 2θ segments per pattern
_PAD_DEG = 8.0    # fine-grid margin: sticks beyond the grid and Lorentzian tails


# Bumped whenever the same conditions render differently; part of a feature cache's name, so a cache
# of an older rendering is not reused. 2: counting noise per row, not per batch.
RENDER_VERSION = 2


def row_seeds(ids, seed: int) -> np.ndarray:
    """A seed per row from its id: a row gets the same rendering in every batch and run."""
    return np.array([zlib.crc32(str(i).encode()) ^ (seed * 0x9E3779B1 & 0xFFFFFFFF) for i in ids],
                    dtype=np.uint64)


def draw(settings: AugmentSettings, rng: np.random.Generator) -> dict:
    """One pattern's measurement conditions."""
    s = settings
    u = rng.uniform
    c: dict = {"clean": bool(rng.random() < s.clean_fraction)}
    c["ka2"] = float(u(*s.ka2_ratio)) if rng.random() < s.ka2_probability else 0.0
    c["w"] = float(u(*s.fwhm)) ** 2
    c["u"] = float(u(*s.caglioti_u))
    c["size_nm"] = float(np.exp(u(*np.log(s.crystallite_nm)))) if rng.random() < s.size_probability else 0.0
    c["eta"] = float(u(*s.eta))
    c["zero"] = float(u(*s.zero_shift))
    c["disp"] = float(u(*s.displacement_mm))
    c["radius"] = s.goniometer_radius_mm
    c["po_r"] = float(np.exp(u(*np.log(s.march_r)))) if rng.random() < s.po_probability else 1.0
    c["po_dir"] = _PO_DIRECTIONS[rng.integers(len(_PO_DIRECTIONS))]
    bg = rng.random() < s.background_probability
    c["bg_level"] = float(u(*s.background_level)) if bg else 0.0
    c["bg_poly"] = rng.uniform(0, 1, 4) * np.array([1.0, 0.6, 0.4, 0.2])  # Chebyshev weights
    c["bg_exp"] = (float(rng.uniform(0, 2)), float(rng.uniform(2, 10)))
    c["hump"] = ((float(u(*s.hump_centre)), float(u(*s.hump_fwhm)), float(rng.uniform(0.3, 1.5)))
                 if rng.random() < s.hump_probability else None)
    c["counts"] = float(np.exp(u(*np.log(s.counts))))
    c["readout"] = float(u(*s.readout_sigma))
    n_imp = int(rng.integers(s.impurity_peaks[0], s.impurity_peaks[1] + 1))
    c["impurities"] = ([(float(u(8, 80)), float(u(*s.impurity_height))) for _ in range(n_imp)]
                       if rng.random() < s.impurity_probability else [])
    c["range"] = ((float(u(*s.two_theta_start)), float(u(*s.two_theta_end)))
                  if rng.random() < s.truncate_probability else None)
    c["noise_seed"] = int(rng.integers(2**63))
    return c


# Low-index preferred-orientation directions (reciprocal-lattice vectors): the platelet and needle
# normals most often reported for powders.
_PO_DIRECTIONS = ((0, 0, 1), (0, 1, 0), (1, 0, 0), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1))


@lru_cache(maxsize=512)
def _laue_rotations(hall: str) -> np.ndarray:
    """Rotation matrices (acting on hkl row vectors) of the Laue group of a Hall symbol."""
    import gemmi
    ops = gemmi.symops_from_hall(hall)
    rots = {tuple(map(tuple, np.array(op.rot) // gemmi.Op.DEN)) for op in ops.sym_ops}
    mats = [np.array(r) for r in rots]
    mats += [-m for m in mats]
    return np.unique(np.array(mats), axis=0)


def reciprocal_metric(cell: np.ndarray) -> np.ndarray:
    """The reciprocal metric tensor G* (3, 3) of a cell (a, b, c in Å; α, β, γ in °): Q = hᵀ G* h."""
    a, b, c = cell[:3]
    al, be, ga = np.radians(cell[3:])
    G = np.array([[a * a, a * b * np.cos(ga), a * c * np.cos(be)],
                  [a * b * np.cos(ga), b * b, b * c * np.cos(al)],
                  [a * c * np.cos(be), b * c * np.cos(al), c * c]])
    return np.linalg.inv(G)


def march_dollase(hkl: np.ndarray, hall: str, cell: np.ndarray, direction, r: float) -> np.ndarray:
    """March–Dollase factor per reflection, averaged over its Laue-equivalent hkl (each equivalent
    appears equally often in the group orbit, so the mean over all operations is the orbit mean)."""
    if r == 1.0 or len(hkl) == 0:
        return np.ones(len(hkl))
    Gs = reciprocal_metric(np.asarray(cell, float))
    rots = _laue_rotations(hall)                              # (g, 3, 3)
    h = np.einsum("ni,gij->ngj", hkl.astype(float), rots)     # hkl · R for every operation
    p = np.asarray(direction, float)
    hp = h @ Gs @ p
    hh = np.einsum("ngi,ij,ngj->ng", h, Gs, h)
    cos2 = hp**2 / np.maximum(hh * (p @ Gs @ p), 1e-300)
    cos2 = np.clip(cos2, 0.0, 1.0)
    f = (r * r * cos2 + (1.0 - cos2) / r) ** -1.5
    return f.mean(axis=1)


def render_augmented(d: np.ndarray, intensity: np.ndarray, offsets: np.ndarray, conditions: list[dict],
                     grid: GridSpec = PAPER_GRID, *, hkl: np.ndarray | None = None, hall=None,
                     cell=None, clean=None) -> np.ndarray:
    """Lab-like profiles (float32, rows × grid points, max = grid.normalize_max) of CSR reflection
    lists under ``conditions`` (one ``draw`` per row). Rows drawn ``clean`` get ``clean(rows)``.
    Each row's noise comes from its own generator, seeded by its ``noise_seed``, so a row renders the
    same in any batch: a feature cache can be extended, resumed or split across processes and every
    row stays one rendering. (Until ``RENDER_VERSION`` 2 one generator served the whole batch, and
    rows cached from differently cut batches mixed two draws of the noise.) The CNN draws new
    conditions, so new noise seeds, on every pass."""
    n_rows = len(offsets) - 1
    n = grid.n_points
    out = np.zeros((n_rows, n), dtype=np.float32)
    dirty = np.array([i for i, c in enumerate(conditions) if not c["clean"]], dtype=np.int64)
    plain = np.array([i for i, c in enumerate(conditions) if c["clean"]], dtype=np.int64)
    if len(plain) and clean is not None:
        out[plain] = clean(plain)
    if not len(dirty):
        return out
    cs = [conditions[i] for i in dirty]
    top = grid.normalize_max
    x = grid.two_theta
    y = _render_rows(d, intensity, offsets, conditions, dirty, grid, hkl, hall, cell)
    for j, c in enumerate(cs):
        for pos, height in c["impurities"]:
            y[j] += top * height * _pv_peak(x - pos, np.sqrt(c["w"]), c["eta"])
    y += _backgrounds(cs, x) * top
    for j, c in enumerate(cs):
        rng = np.random.default_rng(c["noise_seed"])
        scale = c["counts"] / top
        y[j] = rng.poisson(np.clip(y[j], 0, None) * scale) / scale
        y[j] += rng.normal(0.0, c["readout"] * top, y.shape[1])
    np.clip(y, 0, None, out=y)
    for j, c in enumerate(cs):
        if c["range"] is not None:
            y[j, (x < c["range"][0]) | (x > c["range"][1])] = 0.0
    m = y.max(axis=1, keepdims=True)
    np.divide(y * top, m, out=y, where=m > 0)
    out[dirty] = y
    return out


def _backgrounds(cs: list[dict], x: np.ndarray) -> np.ndarray:
    """Per-row background, maximum = the row's drawn level (fraction of the strongest peak)."""
    t = 2.0 * (x - x[0]) / (x[-1] - x[0]) - 1.0
    cheb = np.polynomial.chebyshev.chebvander(t, 3)                      # (n, 4)
    poly = np.array([c["bg_poly"] for c in cs]) * np.array([1.0, 0.5, 0.3, 0.2])
    bg = np.clip(poly @ cheb.T, 0, None)
    amp = np.array([c["bg_exp"][0] for c in cs])[:, None]
    tau = np.array([c["bg_exp"][1] for c in cs])[:, None]
    bg += amp * np.exp(-(x[None, :] - x[0]) / tau)
    for j, c in enumerate(cs):
        if c["hump"] is not None:
            centre, width, hamp = c["hump"]
            bg[j] += hamp * np.exp(-4 * np.log(2) * ((x - centre) / width) ** 2)
    m = bg.max(axis=1, keepdims=True)
    level = np.array([c["bg_level"] for c in cs])[:, None]
    return np.divide(bg * level, m, out=np.zeros_like(bg), where=m > 0)


def _pv_peak(x, h, eta):
    g = np.exp(-4 * np.log(2) * (x / h) ** 2)
    lo = 1 / (1 + 4 * (x / h) ** 2)
    return eta * lo + (1 - eta) * g                                     # height 1 at x = 0


def _render_rows(d, intensity, offsets, conditions, rows, grid, hkl, hall, cell) -> np.ndarray:
    """Peaks only (float64, rows × grid points, max = grid.normalize_max); see the module docstring."""
    from scipy.fft import irfft, next_fast_len, rfft, rfftfreq

    fine = grid.step / _SUB
    lo = grid.two_theta_min - _PAD_DEG
    nf = next_fast_len(int(np.ceil((grid.two_theta_max - lo + _PAD_DEG) / fine)) + 1, real=True)
    freq = rfftfreq(nf, d=fine)
    edges = np.linspace(grid.two_theta_min, grid.two_theta_max, _SEGMENTS + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    wl1 = grid.wavelength
    keys, weights = [], []
    widths = np.empty((len(rows), _SEGMENTS))
    etas = np.empty(len(rows))
    for j, i in enumerate(rows):
        c = conditions[i]
        a, b = offsets[i], offsets[i + 1]
        dd = np.asarray(d[a:b], float)
        inten = np.asarray(intensity[a:b], float)
        if c["po_r"] != 1.0 and hkl is not None:
            inten = inten * march_dollase(hkl[a:b], hall[i], cell[i], c["po_dir"], c["po_r"])
        if c["ka2"] > 0:
            wl = np.r_[np.full(len(dd), wl1), np.full(len(dd), wl1 * CU_KA2 / CU_KA1)]
            dd, inten = np.r_[dd, dd], np.r_[inten, inten * c["ka2"]]
        else:
            wl = wl1
        s = wl / (2.0 * dd)
        ok = s < 1.0
        tt = 2.0 * np.degrees(np.arcsin(s[ok]))
        w = inten[ok] * lp_factor(tt)
        tt = tt + c["zero"] + np.degrees(-2.0 * c["disp"] * np.cos(np.radians(tt / 2.0)) / c["radius"])
        keep = (tt > lo) & (tt < lo + (nf - 2) * fine) & (w > 0)
        tt, w = tt[keep], w[keep]
        seg = np.clip(np.searchsorted(edges, tt) - 1, 0, _SEGMENTS - 1)
        pos = (tt - lo) / fine
        i0 = np.floor(pos).astype(np.int64)
        frac = pos - i0
        base = (j * _SEGMENTS + seg) * nf + i0
        keys += [base, base + 1]
        weights += [w * (1 - frac), w * frac]
        widths[j] = _width(c, centres, wl1)
        etas[j] = c["eta"]
    sticks = np.bincount(np.concatenate(keys), weights=np.concatenate(weights),
                         minlength=len(rows) * _SEGMENTS * nf).astype(np.float32)
    spec = rfft(sticks.reshape(len(rows), _SEGMENTS, nf), axis=-1)
    table = _transfer_table(nf, fine)
    wi = np.clip(np.rint(np.log(widths / _W_MIN) / _W_LOG_STEP), 0, table.shape[0] - 1).astype(int)
    ei = np.rint(etas * (table.shape[1] - 1)).astype(int)
    spec *= table[wi, ei[:, None]]
    prof = irfft(spec.sum(axis=1), n=nf, axis=-1)
    start = int(round((grid.two_theta_min - lo) / fine))
    prof = prof[:, start:start + (grid.n_points - 1) * _SUB + 1:_SUB]
    prof = np.clip(prof, 0, None)
    top = prof.max(axis=1, keepdims=True)
    np.divide(prof * grid.normalize_max, top, out=prof, where=top > 0)
    return prof


def _width(c: dict, two_theta: np.ndarray, wavelength: float) -> np.ndarray:
    """FWHM (° 2θ) at ``two_theta``: Caglioti (V = 0) plus Scherrer size broadening."""
    theta = np.radians(two_theta / 2.0)
    h = np.sqrt(c["u"] * np.tan(theta) ** 2 + c["w"])
    if c["size_nm"] > 0:
        h = h + np.degrees(0.9 * wavelength / (c["size_nm"] * 10.0 * np.cos(theta)))
    return h


_W_MIN, _W_LOG_STEP, _N_W, _N_ETA = 0.01, 0.02, 300, 17   # widths 0.01–4° in 2 % steps


@lru_cache(maxsize=4)
def _transfer_table(nf: int, fine: float) -> np.ndarray:
    """Pseudo-Voigt transforms on a (width, η) lattice, looked up instead of evaluated per row: the
    exponentials dominated rendering (2 % width steps are far below the drawn ranges' spread)."""
    from scipy.fft import rfftfreq
    freq = rfftfreq(nf, d=fine).astype(np.float32)
    h = (_W_MIN * np.exp(_W_LOG_STEP * np.arange(_N_W))).astype(np.float32)
    eta = np.linspace(0, 1, _N_ETA, dtype=np.float32)
    return np.stack([_pv_transfer(freq[None, :], h[:, None], e) for e in eta], axis=1)  # (w, η, f)


def _pv_transfer(freq: np.ndarray, h: float, eta: float) -> np.ndarray:
    """Fourier transform of an area-1 pseudo-Voigt of FWHM h (freq in cycles per degree)."""
    a = np.float32(np.pi) * h * np.abs(freq)             # float32 throughout: this is the hot loop
    gauss = np.exp(-(a * a) * np.float32(1.0 / (4.0 * np.log(2.0))))
    lorentz = np.exp(-a)
    return eta * lorentz + (1.0 - eta) * gauss
