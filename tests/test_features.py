"""The hand-written local-maximum finder is scipy.signal.find_peaks without conditions."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from crystalmela.features import local_maxima, peak_indices
from crystalmela.pattern import PAPER_GRID, Pattern
from crystalmela.errors import CrystalmelaError
from crystalmela.simulate import simulate


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
