"""The hand-written local-maximum finder is scipy.signal.find_peaks without conditions."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from crystalmela.plugin_api.peaks import local_maxima, peak_indices
from crystalmela.plugin_api.pattern import PAPER_GRID, Pattern
from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.simulation.simulate import simulate


@pytest.mark.parametrize("y", [
    [], [1.0], [1.0, 2.0], [0, 1, 0], [1, 1, 1], [0, 2, 2, 0], [0, 2, 2, 2, 0], [0, 2, 2, 3, 0],
    [0, 2, 2, 1, 3, 3, 3, 3, 0], [3, 1, 2], [0, 1, 1], [1, 1, 0], [0, 1, 0, 1, 0, 1, 0],
    [5, 5, 1, 5, 5], [0, -1, 0, -1, -0.5, -1],
])
def test_equals_find_peaks_on_edge_cases(y):
    y = np.asarray(y, dtype=float)
    assert local_maxima(y).tolist() == find_peaks(y)[0].tolist()


def test_equals_find_peaks_on_random_and_quantised_signals():
    rng = np.random.default_rng(0)
    for n in (3, 4, 10, 101, 4501):
        for _ in range(20):
            y = rng.normal(size=n)
            assert np.array_equal(local_maxima(y), find_peaks(y)[0])
            q = np.round(y * 2)              # many plateaus
            assert np.array_equal(local_maxima(q), find_peaks(q)[0])


def test_equals_find_peaks_on_simulated_patterns(shared_cifs):
    checked = 0
    for cif in shared_cifs[::10]:
        try:
            p = simulate(cif).to_grid(PAPER_GRID)
        except CrystalmelaError:
            continue                          # the shared folder holds a few deliberately bad CIFs
        assert np.array_equal(peak_indices(p), find_peaks(p.y)[0])
        checked += 1
    assert checked >= 20


def test_keyword_arguments_go_to_find_peaks():
    x = np.arange(0, 90.0001, 0.02)
    y = np.zeros_like(x)
    y[[100, 2000]] = [1000.0, 3.0]
    y[[1000, 1001]] = [2.0, 2.0]
    p = Pattern(x, y, wavelength=1.54056)
    assert peak_indices(p).tolist() == [100, 1000, 2000]
    assert peak_indices(p, height=10).tolist() == [100]


def test_describe_peaks_says_how_many_where_the_first_are_and_which_are_weak():
    from crystalmela.plugin_api.peaks import describe_peaks
    x = np.linspace(0, 90, 4501)
    y = np.full_like(x, 5.0)
    for t, h in ((10.0, 2.0), (20.0, 100.0), (30.0, 40.0)):       # one weak line, two strong
        y += h * np.exp(-0.5 * ((x - t) / 0.05) ** 2)
    p = Pattern(x=x, y=y, wavelength=1.54056, grid=PAPER_GRID)
    said = describe_peaks(p, peak_indices(p))
    assert said.lines == ["3 local maxima taken as peaks (every one, no height threshold: paper §3.2)",
                     "first 3 at 2θ 10.00 20.00 30.00° (0 of them below 5% of the strongest)",
                     "strongest at 2θ 20.00°"]
    assert said.data == {"maxima": 3, "first_two_theta": [10.0, 20.0, 30.0], "weak_of_first": 0,
                         "weak_below": 0.05, "strongest_two_theta": 20.0}
    assert "(1 of them below 10% of the strongest)" in describe_peaks(p, peak_indices(p), weak=0.10).lines[1]
    none = describe_peaks(p, np.array([], int))
    assert none.lines == ["no local maximum: the peak features are all zero"] and none.data["maxima"] == 0


def test_the_paper_models_show_the_noise_they_read_on_a_measured_scan(real):
    """The bundled LiCoO2 scan: every local maximum is a peak for the paper's features, so the first
    ten are wiggles of the background at the scan's start, which the explanation shows."""
    import crystalmela as cm
    pred = cm.predict(real / "LiCoO2.RAW",
                      models=["random_forest", "extra_trees"])
    said = pred.evidence["random_forest"]
    assert said == pred.evidence["extra_trees"]
    assert int(said[0].split()[0]) > 100 and "(10 of them below 5% of the strongest)" in said[1]
    data = pred.evidence_data["random_forest"]
    assert data["maxima"] == int(said[0].split()[0]) and data["weak_of_first"] == 10
    assert pred.to_json()["evidence_data"]["extra_trees"] == data
    table = cm.pipeline.result.format_table(pred)
    assert table.count("local maxima taken as peaks") == 1 and "extra_trees: as random_forest" in table
