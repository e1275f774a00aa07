import numpy as np
import pytest

from crystalmela import PAPER_GRID, GridSpec, Pattern, PatternError, crystal_system
from crystalmela.plugin_api.pattern import d_to_two_theta, two_theta_to_d


def peak(x, c, w=0.05, h=100.0):
    return h * np.exp(-((x - c) / w) ** 2)


def test_paper_grid_is_4501_points_0_to_90():
    g = PAPER_GRID
    assert g.n_points == 4501 and g.two_theta[0] == 0 and g.two_theta[-1] == 90
    assert g.wavelength == 1.54056 and g.normalize_max == 1000


@pytest.mark.parametrize("kw", [dict(two_theta_max=0.0), dict(step=0.0), dict(step=0.07), dict(wavelength=-1)])
def test_gridspec_rejects_inconsistent(kw):
    with pytest.raises(ValueError):
        GridSpec(**kw)


@pytest.mark.parametrize("x,y,msg", [
    ([1, 2, 3], [1, 2], "has 3 values but intensity has 2"),
    ([1], [1], "at least 2 points"),
    ([1, np.nan, 3], [1, 2, 3], "x value at point 2"),
    ([1, 2, 3], [1, np.inf, 3], "intensity value at point 2"),
    ([1, 2, 200], [1, 2, 3], "2θ must lie in 0–180"),
    ([1, 2, 3], [1, -2, 3], "negative"),
])
def test_pattern_validation(x, y, msg):
    with pytest.raises(PatternError, match=msg):
        Pattern(x, y)


def test_sorts_and_merges_duplicates():
    p = Pattern([3, 1, 2, 2], [30, 10, 20, 40])
    assert p.x.tolist() == [1, 2, 3] and p.y.tolist() == [10, 30, 30]
    assert any("merged 1 duplicate" in n for n in p.notes)


@pytest.mark.parametrize("policy,first", [("offset", 0.0), ("clip", 0.0)])
def test_negative_policies_are_recorded(policy, first):
    p = Pattern([1, 2, 3], [-5, 0, 5], negative=policy)
    assert p.y.min() == first and p.notes
    if policy == "offset":
        assert p.y.tolist() == [0, 5, 10]


def test_to_grid_shape_and_normalisation():
    x = np.arange(5, 80, 0.01)
    g = Pattern(x, 10 + peak(x, 30.0), wavelength=1.54056).to_grid()
    assert len(g) == 4501 and g.y.max() == pytest.approx(1000) and g.grid == PAPER_GRID
    assert g.x[np.argmax(g.y)] == pytest.approx(30.0, abs=0.02)
    assert g.y[: int(5 / 0.02) - 1].max() == 0  # zero-padded below the data
    assert any("zero-padded" in n for n in g.notes)


def test_to_grid_converts_wavelength_through_d():
    d = 3.0
    mo = 0.7093
    tt_mo = d_to_two_theta(d, mo)
    x = np.arange(2, 40, 0.005)
    g = Pattern(x, peak(x, tt_mo, w=0.02), wavelength=mo).to_grid()
    assert g.x[np.argmax(g.y)] == pytest.approx(d_to_two_theta(d, 1.54056), abs=0.02)
    assert any("converted from λ = 0.7093" in n for n in g.notes)


def test_explicit_wavelength_overrides_file():
    x = np.arange(10, 60, 0.02)
    p = Pattern(x, peak(x, 20.0), wavelength=1.54056)
    g = p.to_grid(wavelength=1.78897)  # really Co
    assert g.x[np.argmax(g.y)] == pytest.approx(d_to_two_theta(two_theta_to_d(20.0, 1.78897), 1.54056), abs=0.02)


def test_missing_wavelength_is_assumed_and_said():
    x = np.arange(10, 60, 0.02)
    g = Pattern(x, peak(x, 20.0)).to_grid()
    assert any("assumed 1.54056" in n for n in g.notes)


def test_cut_at_90_and_d_and_q_axes():
    x = np.arange(10, 120, 0.02)
    g = Pattern(x, peak(x, 100.0) + peak(x, 40.0), wavelength=1.54056).to_grid()
    assert any("cut at 2θ = 90" in n for n in g.notes)
    d = two_theta_to_d(40.0, 1.54056)
    dd = np.linspace(1.2, 5, 4000)
    gd = Pattern(dd, peak(dd, d, w=0.002), axis="d").to_grid()
    assert gd.x[np.argmax(gd.y)] == pytest.approx(40.0, abs=0.03)
    q = np.linspace(0.5, 5, 5000)
    gq = Pattern(q, peak(q, 2 * np.pi / d, w=0.005), axis="q").to_grid()
    assert gq.x[np.argmax(gq.y)] == pytest.approx(40.0, abs=0.03)


def test_fine_data_keep_peak_area_when_regridded():
    """A peak narrower than one grid step: point sampling could miss it; averaging keeps its area."""
    x = np.arange(10, 60, 0.001)  # 20× finer than the grid
    y = peak(x, 30.013, w=0.004) + peak(x, 40.0, w=0.2)  # sharp peak off-grid, broad reference peak
    g = Pattern(x, y, wavelength=1.54056).to_grid()
    sharp = g.y[(g.x > 29.9) & (g.x < 30.1)].sum()
    broad = g.y[(g.x > 39.0) & (g.x < 41.0)].sum()
    true_ratio = (0.004 * np.sqrt(np.pi)) / (0.2 * np.sqrt(np.pi))
    assert sharp / broad == pytest.approx(true_ratio, rel=1e-3)


@pytest.mark.parametrize("x", [np.arange(100, 170, 0.1)])
def test_nothing_in_range_is_an_error(x):
    with pytest.raises(PatternError, match="outside the models' range|no intensity"):
        Pattern(x, np.ones_like(x), wavelength=1.54056).to_grid()


def test_all_zero_in_range_is_an_error():
    x = np.arange(10, 80, 0.1)
    with pytest.raises(PatternError, match="no intensity"):
        Pattern(x, np.zeros_like(x), wavelength=1.54056).to_grid()


@pytest.mark.parametrize("sg,system", [(1, "triclinic"), (2, "triclinic"), (3, "monoclinic"), (15, "monoclinic"),
                                       (16, "orthorhombic"), (74, "orthorhombic"), (75, "tetragonal"),
                                       (142, "tetragonal"), (143, "trigonal"), (166, "trigonal"),
                                       (167, "trigonal"), (168, "hexagonal"), (194, "hexagonal"),
                                       (195, "cubic"), (230, "cubic")])
def test_crystal_system_boundaries(sg, system):
    assert crystal_system(sg) == system


@pytest.mark.parametrize("sg", [0, 231, -1])
def test_crystal_system_rejects_bad_numbers(sg):
    with pytest.raises(ValueError):
        crystal_system(sg)


def test_flat_stretches_have_no_float_ripple():
    """Regression: resampling must not leave 1e-13 ripples that a threshold-free peak finder counts."""
    from scipy.signal import find_peaks
    x = np.arange(10, 30, 0.05)
    y = 100 + np.round(900 * np.exp(-((x - 20.0) / 0.1) ** 2))
    g = Pattern(x, y, wavelength=1.54056).to_grid()
    assert len(find_peaks(g.y)[0]) == 1
