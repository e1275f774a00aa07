"""Augmentation, preprocessing and calibration: each effect does what its docs say, the hand-written
filters equal the libraries', and the pipeline hands training what predict hands a model."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from crystalmela.training import calibration
from crystalmela.simulation.augment import AugmentSettings, draw, march_dollase, render_augmented, row_seeds
from crystalmela.cli.main import main
from crystalmela.dataset import BuildSettings, build
from crystalmela.dataset.store import load_reflections, render_batch
from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.plugin_api.pattern import PAPER_GRID, Pattern
from crystalmela.pipeline.preprocess import PreprocessSettings, parse, preprocess, savgol, snip, strip_ka2
from crystalmela.simulation.profiles import ProfileSettings, render

X = PAPER_GRID.two_theta
OFF = dict(clean_fraction=0, ka2_probability=0, size_probability=0, po_probability=0,
           background_probability=0, hump_probability=0, impurity_probability=0,
           truncate_probability=0, counts=(1e9, 1e9), readout_sigma=(0, 0), zero_shift=(0, 0),
           displacement_mm=(0, 0), caglioti_u=(0, 0), fwhm=(0.1, 0.1), eta=(0.5, 0.5))


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("aug") / "ds"
    build(out, BuildSettings(synthetic=60, chunk_size=30, seed=5), workers=1, progress=False)
    return load_reflections(out, "full", None)


def _render(rows, idx, **over):
    s = AugmentSettings(**{**OFF, **over})
    sub = rows.subset(np.asarray(idx))
    conds = [draw(s, np.random.default_rng(i)) for i in range(len(idx))]
    y = render_augmented(sub.d, sub.intensity, sub.offsets, conds, PAPER_GRID, hkl=sub.hkl,
                         hall=sub.hall, cell=sub.cell, clean=lambda r: render_batch(sub, r))
    return y, conds


def test_all_effects_off_matches_the_plain_renderer(rows):
    y, _ = _render(rows, [0, 1, 2])
    plain = render_batch(rows, [0, 1, 2], settings=ProfileSettings(shape="pseudo_voigt", fwhm=0.1))
    assert y.shape == plain.shape and y.dtype == np.float32
    assert np.abs(y - plain).max() < 0.02 * 1000         # FFT on a 0.01° grid vs direct evaluation


def test_effects_change_what_they_should(rows):
    base, _ = _render(rows, [3])
    peak = X[np.argmax(base[0])]
    shifted, _ = _render(rows, [3], zero_shift=(0.1, 0.1))
    assert X[np.argmax(shifted[0])] == pytest.approx(peak + 0.1, abs=0.021)
    wide, _ = _render(rows, [3], fwhm=(0.3, 0.3))
    assert (wide[0] > 500).sum() > 2 * (base[0] > 500).sum()
    bg, _ = _render(rows, [3], background_probability=1, background_level=(0.3, 0.3))
    assert np.median(bg[0]) > 50 and np.median(base[0]) < 5
    noisy, _ = _render(rows, [3], counts=(200, 200))
    assert np.abs(noisy[0] - base[0]).max() > 20
    cut, c = _render(rows, [3], truncate_probability=1)
    lo, hi = c[0]["range"]
    assert not cut[0][(X < lo) | (X > hi)].any()
    ka2, _ = _render(rows, [3], ka2_probability=1)
    assert not np.allclose(ka2, base)


def test_every_row_is_finite_and_scaled(rows):
    y, _ = _render(rows, np.arange(len(rows)), **{k: v for k, v in AugmentSettings().model_dump().items()})
    assert np.isfinite(y).all() and (y >= 0).all()
    assert np.allclose(y.max(axis=1), 1000, atol=1e-2)


def test_a_row_renders_the_same_in_any_batch(rows):
    """Noise included: a feature cache built from batches cut one way equals one built another way."""
    s = AugmentSettings(clean_fraction=0, counts=(300, 300), readout_sigma=(0.004, 0.004))
    sub = rows.subset(np.arange(12))
    conds = [draw(s, np.random.default_rng(100 + i)) for i in range(12)]

    def render(idx):
        part = sub.subset(np.asarray(idx))
        return render_augmented(part.d, part.intensity, part.offsets, [conds[i] for i in idx], PAPER_GRID,
                                hkl=part.hkl, hall=part.hall, cell=part.cell)

    whole = render(list(range(12)))
    np.testing.assert_array_equal(render([5]), whole[[5]])
    np.testing.assert_array_equal(render([9, 2, 5]), whole[[9, 2, 5]])
    other = [dict(c, noise_seed=c["noise_seed"] + 1) for c in conds[:1]]
    part = sub.subset(np.array([0]))
    moved = render_augmented(part.d, part.intensity, part.offsets, other, PAPER_GRID, hkl=part.hkl,
                             hall=part.hall, cell=part.cell)
    assert np.abs(moved[0] - whole[0]).max() > 10          # the seed, not the batch, picks the noise


def test_row_seeds_are_stable_and_distinct():
    a = row_seeds(["x", "y", "z"], 0)
    assert (a == row_seeds(["x", "y", "z"], 0)).all() and len(set(a.tolist())) == 3
    assert (a != row_seeds(["x", "y", "z"], 1)).all()


def test_march_dollase_is_orbit_averaged():
    cubic = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    cell = np.array([5.0, 5.0, 5.0, 90, 90, 90])
    f = march_dollase(cubic, "-P 4 2 3", cell, (0, 0, 1), 0.7)
    # every cubic form contains directions at all orientations to <001> symmetrically: the factor of
    # {100} is (2·P(0°) + 4·P(90°)) / 6
    p0, p90 = 0.7 ** -3, (1 / 0.7) ** -1.5
    assert f[0] == pytest.approx((2 * p0 + 4 * p90) / 6)
    assert np.all(march_dollase(cubic, "-P 4 2 3", cell, (0, 0, 1), 1.0) == 1)
    tetragonal = march_dollase(np.array([[0, 0, 1], [1, 0, 0]]), "-P 4 2", np.array([4.0, 4, 7, 90, 90, 90]),
                               (0, 0, 1), 0.7)
    assert tetragonal[0] == pytest.approx(p0) and tetragonal[1] == pytest.approx(p90)


@pytest.mark.parametrize("bad", [{"fwhm": (0.3, 0.1)}, {"clean_fraction": 2}, {"nope": 1}])
def test_bad_augment_settings_are_refused(bad):
    with pytest.raises(ValueError):
        AugmentSettings(**bad)


# ------------------------------------------------------------------------------------ preprocess

def test_snip_and_savgol_equal_the_libraries():
    import pybaselines.smooth
    from scipy.signal import savgol_filter
    rng = np.random.default_rng(1)
    y = rng.random(700) * 20 + 300 * np.exp(-np.linspace(0, 4, 700)) + render(
        np.array([4.0, 3.0, 2.2]), np.ones(3))[:700]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pybaselines.smooth.snip(y, 40, pad_kwargs={"mode": "edge"})[0]
    assert np.array_equal(snip(y, 40), ref)
    for w in (5, 9, 21):
        assert np.allclose(savgol(y, w), savgol_filter(y, w, 2, mode="nearest"), atol=1e-9)


@pytest.mark.parametrize("steps", ["smooth", "smooth=4", "smooth=21", "ka2,smooth,background"])
def test_smoothing_a_short_scan_keeps_the_intensity_non_negative(steps):
    """A scan starting at 16° is zero-padded below it on the grid; the quadratic smoother overshoots
    below zero at that step, which the Pattern then refused ("intensity is negative")."""
    from crystalmela.plugin_api.pattern import PAPER_GRID, Pattern
    x = np.arange(16.0, 90.0, 0.02)
    y = 400 + 3000 * np.exp(-0.5 * ((x - 19.0) / 0.06) ** 2)
    out = preprocess(Pattern(x, y, axis="2theta", wavelength=1.54056).to_grid(PAPER_GRID), parse(steps))
    assert (out.y >= 0).all() and out.y.max() > 0


def test_ka2_strip_recovers_the_ka1_profile():
    d, i = np.array([3.5, 2.5, 1.6, 1.2]), np.array([1.0, 0.6, 0.8, 0.3])
    doublet = render(d, i, settings=ProfileSettings(ka2=True))
    single = render(d, i)
    out = strip_ka2(X, doublet)
    assert np.abs(out / out.max() * 1000 - single).max() < 20      # 2 % of the maximum
    assert np.abs(doublet - single).max() > 100


def test_background_subtraction_flattens_a_slope():
    peaks = render(np.array([3.0, 2.0]), np.ones(2))
    p = Pattern(X, peaks + 200 + 2 * X, wavelength=PAPER_GRID.wavelength).to_grid(PAPER_GRID)
    out = preprocess(p, PreprocessSettings(background=True))
    assert np.median(out.y) < 5 < np.median(p.y)
    assert "SNIP" in out.notes[-1] and out.y.max() == pytest.approx(1000)
    assert preprocess(p, PreprocessSettings()) is p


@pytest.mark.parametrize("spec, expected", [
    ("none", PreprocessSettings()), ("", PreprocessSettings()),
    ("ka2,smooth=9,background=2", PreprocessSettings(ka2_strip=True, smooth_points=9, background=True,
                                                     snip_half_window_deg=2)),
    ("smooth", PreprocessSettings(smooth_points=7))])
def test_parse(spec, expected):
    assert parse(spec) == expected


@pytest.mark.parametrize("spec, match", [("sharpen", "expected ka2"), ("smooth=x", "smooth=x"),
                                         ("smooth=500", "smooth_points"), ("background=-1", "snip")])
def test_parse_refuses_bad_steps(spec, match):
    with pytest.raises(CrystalmelaError, match=match):
        parse(spec)


def test_cli_preprocess_is_recorded(xy_file, toy, capsys):
    assert main(["predict", str(xy_file), "--models", "toy_a", "--json", "--preprocess", "background"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "SNIP" in out["preprocessing"]["toy_a"]
    assert main(["predict", str(xy_file), "--preprocess", "blur"]) == 2
    assert "expected ka2" in capsys.readouterr().err
    assert main(["predict", str(xy_file), "--unsure-below", "3"]) == 2


# ----------------------------------------------------------------------------------- calibration

def test_temperature_scaling_fixes_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 4000)
    logits = rng.normal(0, 1, (4000, 7))
    logits[np.arange(4000), y] += 1.0
    p = np.exp(logits * 4)                                  # 4× too sharp
    p /= p.sum(axis=1, keepdims=True)
    rec = calibration.calibration_record(p, y, "synthetic")
    assert 3 < rec["temperature"] < 5.5
    assert rec["ece_after"] < rec["ece_before"] / 2 and rec["nll_after"] < rec["nll_before"]
    q = calibration.scale(p, rec["temperature"])
    assert np.allclose(q.sum(axis=1), 1) and (q.argmax(axis=1) == p.argmax(axis=1)).all()


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_fitted_ensemble_weights_favour_the_informative_model():
    """One model sees the label, one is noise, one is a weaker copy of the first: the noise gets
    (near) zero weight, and the fitted pool beats equal weights in likelihood."""
    from crystalmela.pipeline.ensemble import combine_rows
    rng = np.random.default_rng(3)
    n = 3000
    y = rng.integers(0, 7, n)
    good = rng.normal(0, 1, (n, 7))
    good[np.arange(n), y] += 2.0
    probs = {"good": _softmax(good), "noise": _softmax(rng.normal(0, 2, (n, 7))),
             "weak": _softmax(0.3 * good + rng.normal(0, 1, (n, 7)))}
    w = calibration.fit_weights(probs, y)
    assert set(w) == set(probs) and sum(w.values()) == pytest.approx(3, abs=1e-3)
    assert w["good"] > 2 * w["weak"] and w["noise"] < 0.1
    fitted = combine_rows(probs, weights=w)
    equal = combine_rows(probs)
    assert calibration.nll(fitted, y) < calibration.nll(equal, y)
    assert (fitted.argmax(1) == y).mean() > (equal.argmax(1) == y).mean()


def test_fit_weights_gradient_matches_finite_differences(monkeypatch):
    import scipy.optimize
    rng = np.random.default_rng(4)
    y = rng.integers(0, 7, 200)
    probs = {k: _softmax(rng.normal(0, 1, (200, 7))) for k in "abc"}
    captured, real = {}, scipy.optimize.minimize

    def spy(fun, x0, **kw):
        captured["fun"] = fun
        return real(fun, x0, **kw)
    monkeypatch.setattr(scipy.optimize, "minimize", spy)
    calibration.fit_weights(probs, y)
    f = captured["fun"]
    x = np.array([0.3, 0.7, 1.1])
    assert scipy.optimize.check_grad(lambda a: f(a)[0], lambda a: f(a)[1], x) < 1e-5


def test_unsure_flag(toy, xy_file):
    import crystalmela as cm
    pred = cm.predict(xy_file, models=["toy_a"], unsure_below=1.0)     # the highest threshold allowed
    assert pred.unsure and pred.to_json()["unsure"] is True
    # the test pattern (one peak over 20°) is doubtful data, which the gate flags whatever the threshold
    assert not cm.predict(xy_file, models=["toy_a"], unsure_below=0.0, quality=None).unsure


def test_crossfit_accuracy_scores_each_half_with_the_other_halfs_weights():
    """With an informative model it matches the in-sample accuracy closely; with pure noise models
    it falls to chance, whatever the in-sample fit."""
    from crystalmela.pipeline.ensemble import combine_rows
    rng = np.random.default_rng(5)
    n = 2000
    y = rng.integers(0, 7, n)
    good = rng.normal(0, 1, (n, 7))
    good[np.arange(n), y] += 1.5
    probs = {"good": _softmax(good), "noise": _softmax(rng.normal(0, 2, (n, 7)))}
    inside = (combine_rows(probs, weights=calibration.fit_weights(probs, y)).argmax(1) == y).mean()
    assert calibration.crossfit_accuracy(probs, y) == pytest.approx(inside, abs=0.02)
    noise = {k: _softmax(rng.normal(0, 2, (n, 7))) for k in "ab"}
    assert abs(calibration.crossfit_accuracy(noise, y) - 1 / 7) < 0.04
