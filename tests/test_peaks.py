"""The peak search on measured-like data: positions, Kα doublets reported once, uncertainties that
match the scatter, the real LiCoO₂ scan, and the CLI."""
import json

import numpy as np
import pytest

import crystalmela as cm
from crystalmela.cli.main import main
from crystalmela.peaks.profile import ka2_position, pseudo_voigt
from crystalmela.peaks.search import LAB_LINES
from crystalmela.plugin_api.peaklist import PeakSearchSettings, find_peaks

KA1, KA2, AVG = LAB_LINES["Cu"]
TRUE = np.array([21.37, 30.42, 35.11, 35.52, 43.20, 57.03, 62.88, 74.41])
AREAS = np.array([300, 120, 80, 60, 200, 40, 90, 30.0])


def _scan(seed: int, step=0.02, fwhm=0.09, eta=0.4, counts=1.0, ka2=True, wavelength=KA1):
    rng = np.random.default_rng(seed)
    x = np.arange(10, 90, step)
    y = 200 * np.exp(-x / 25) + 40.0                     # a falling background, as a lab scan's
    for c, a in zip(TRUE, AREAS):
        y = y + a * pseudo_voigt(x, c, fwhm, eta)
        if ka2:
            y = y + 0.5 * a * pseudo_voigt(x, float(ka2_position(c, KA2 / KA1)), fwhm, eta)
    return cm.Pattern(x, rng.poisson(y * counts) / counts, wavelength=wavelength)


def test_every_line_found_once_doublets_included_at_its_position():
    peaks = find_peaks(_scan(0))
    assert peaks.ka2 and len(peaks) == len(TRUE), peaks.to_text()
    found = peaks.two_theta
    assert np.abs(found - TRUE).max() < 0.01
    assert all(abs(p.two_theta - t) < 4 * p.esd_two_theta + 0.002 for p, t in zip(peaks.peaks, TRUE))
    assert [round(p.d, 4) for p in peaks.peaks] == [round(KA1 / (2 * np.sin(np.radians(t) / 2)), 4) for t in found]
    strongest = max(peaks.peaks, key=lambda p: p.area)
    assert strongest.two_theta == pytest.approx(21.37, abs=0.005) and strongest.fwhm == pytest.approx(0.09, rel=0.1)


def test_the_position_uncertainty_matches_the_scatter_over_noise_draws():
    """The covariance's esd against the standard deviation of 20 independent fits."""
    runs = [find_peaks(_scan(seed, counts=0.5)) for seed in range(20)]
    runs = [r for r in runs if len(r) == len(TRUE)]
    assert len(runs) >= 16
    pos = np.array([r.two_theta for r in runs])
    esd = np.array([[p.esd_two_theta for p in r.peaks] for r in runs]).mean(axis=0)
    ratio = esd / pos.std(axis=0, ddof=1)
    assert np.all((ratio > 0.6) & (ratio < 1.7)), ratio


def test_without_kalpha2_no_doublet_is_assumed_where_the_wavelength_is_not_a_tubes():
    peaks = find_peaks(_scan(1, ka2=False, wavelength=0.4959))            # synchrotron
    assert not peaks.ka2 and np.abs(peaks.two_theta - TRUE).max() < 0.01


def test_a_kalpha_average_wavelength_is_read_as_the_doublet():
    peaks = find_peaks(_scan(2, wavelength=AVG))
    assert peaks.ka2 and peaks.wavelength == KA1 and any("Kα average" in n for n in peaks.notes)
    assert len(peaks) == len(TRUE)


def test_noise_alone_has_no_peaks():
    rng = np.random.default_rng(3)
    x = np.arange(10, 90, 0.02)
    peaks = find_peaks(cm.Pattern(x, rng.poisson(100, x.size), wavelength=KA1))
    assert len(peaks) == 0 and "no peak above the noise" in peaks.notes


def test_the_bundled_licoo2_scan():
    peaks = find_peaks(cm.read_pattern("examples/LiCoO2.RAW"))
    assert 20 <= len(peaks) <= 45 and peaks.ka2
    top = max(peaks.peaks, key=lambda p: p.height)
    assert top.two_theta == pytest.approx(19.0, abs=0.05)          # LiCoO₂ 003, the file's zero shift included
    assert list(peaks.two_theta) == sorted(peaks.two_theta)
    assert all(0 < p.esd_two_theta < 0.05 for p in peaks.peaks if p.snr > 50)


def test_bad_input_is_a_clear_error():
    with pytest.raises(cm.PatternError, match="too few to search"):
        find_peaks(cm.Pattern(np.linspace(10, 20, 10), np.ones(10)))
    with pytest.raises(cm.PatternError, match="needs a Pattern"):
        find_peaks(np.zeros(100))
    with pytest.raises(ValueError):
        PeakSearchSettings(min_sigma=0)


def test_cli_peaks_text_json_and_errors(tmp_path, capsys):
    f = tmp_path / "scan.xy"
    p = _scan(4)
    np.savetxt(f, np.column_stack([p.x, p.y]), header="wavelength 1.540593")
    assert main(["peaks", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["path"] == str(f) and len(out["peaks"]) == len(TRUE)
    assert set(out["peaks"][0]) == {"two_theta", "esd_two_theta", "d", "height", "area", "fwhm", "eta", "snr"}
    listing = tmp_path / "peaks.txt"
    assert main(["peaks", str(f), "-o", str(listing)]) == 0
    rows = [ln for ln in listing.read_text().splitlines() if not ln.startswith("#")]
    assert len(rows) == len(TRUE) and float(rows[0].split()[0]) == pytest.approx(TRUE[0], abs=0.01)
    bad = tmp_path / "three.xy"
    bad.write_text("10 1\n20 5\n30 2\n")
    capsys.readouterr()
    assert main(["peaks", str(bad), str(f)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"error: {bad}: 3 points: too few to search for peaks"
    assert main(["peaks", str(bad), str(f), "-o", str(listing)]) == 2
