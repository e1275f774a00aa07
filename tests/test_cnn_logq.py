"""The log-Q input of the cnn_flax ``logq`` network: no 2θ point is lost, peak heights survive, and
scaling a cell shifts the resampled pattern by ln(scale²) without changing its shape."""
from __future__ import annotations

import numpy as np
import pytest

from crystalmela.simulate import simulate
from crystalmela.structure import Crystal
from crystalmela_cnn_flax.network import CONFIGS, build, log_q_index

N, START, STEP, LOW, BINS = 4501, 0.0, 0.02, 2.0, 2048


@pytest.fixture(scope="module")
def index():
    return log_q_index(N, START, STEP, LOW, BINS)


def test_every_point_above_the_low_limit_reaches_a_bin(index):
    first = int(np.floor(LOW / STEP))
    assert set(range(first + 1, N)) <= set(np.unique(index).tolist())
    assert np.all(np.diff(index[:, 0]) >= 0) and index.max() == N - 1


@pytest.mark.parametrize("position", [150, 777, 2500, 4321, 4499])
def test_a_one_point_peak_keeps_its_height(index, position):
    x = np.zeros(N)
    x[position] = 1.0
    assert x[index].max(-1).max() == 1.0


def _cubic(a):
    return Crystal(cell=(a, a, a, 90, 90, 90), hall="-F 4 2 3", elements=["Cu"],
                   fract=np.zeros((1, 3)), occ=np.ones(1), u_iso=np.full(1, 0.01))


def _peak_bins(index, a):
    y = simulate(_cubic(a)).y
    z = y[index].max(-1)
    inner = (z[1:-1] > z[:-2]) & (z[1:-1] >= z[2:]) & (z[1:-1] > 0.01 * z.max())
    return np.flatnonzero(inner) + 1


def test_scaling_the_cell_shifts_the_log_q_pattern(index):
    """Cu (Fm-3m) at a = 5.0 and 6.0 Å: the same lines, every one moved by ln((4.3/3.6)²)."""
    bin_width = 2 * np.log(np.sin(np.radians(90 / 2)) / np.sin(np.radians(LOW / 2))) / BINS
    shift = 2 * np.log(6.0 / 5.0) / bin_width
    small, large = _peak_bins(index, 5.0), _peak_bins(index, 6.0)
    n = min(len(small), len(large), 6)
    assert n >= 4
    # same lines (111, 200, 220, 311 …), each shifted by the same number of bins (±1 for sampling)
    np.testing.assert_allclose(small[:n] - large[:n], shift, atol=1.0)


def test_logq_network_runs_and_meets_its_input_contract():
    import jax.numpy as jnp
    cfg = {k: v for k, v in CONFIGS["logq"].items()
           if k in {"arch", "channels", "kernels", "hidden", "dropout", "log_bins", "two_theta_low",
                    "input_step", "input_start"}}
    net = build(cfg)
    net.eval()
    out = net(jnp.zeros((3, N), dtype=jnp.float32))
    assert out.shape == (3, 7)
