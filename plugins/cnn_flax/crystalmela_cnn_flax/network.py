"""The CNN architectures (Flax NNX) and their msgpack weights files.

``paper``: the CrystalMELA paper's network (§3.1): three Conv1D blocks of 80/160/240 filters with
kernels 200/100/50, stride 2, SAME, ReLU, dropout 0.3, average pooling 3; dense 2800/1400/700 ReLU
and 70 tanh, each with batch norm (L2 via weight decay); softmax over 7. 22 M parameters: trainable
here, but at ≈ 20 samples/s on 2 CPU cores it needs an accelerator.

``fast`` (shipped default): the profile averaged ×4 (0.08° bins; a
0.1° peak still spans them) and square-rooted (weak reflections carry the symmetry information), five
small convolution blocks with max pooling, global mean+max pooling, one hidden dense layer. 44 k
parameters.

``logq``: the same kind of network on the profile resampled onto a logarithmic
Q = 1/d² axis, 2048 bins from 2θ = 2° to the grid's end. Why: Q(hkl) is linear in the reciprocal
metric, so scaling a cell multiplies every Q by one factor, which on a log axis is a shift. A
convolution + global-pooling network is (nearly) shift-invariant, so it sees the ratios Q_i/Q_j that
decide the crystal system (cubic 1:2:3:4…, tetragonal and hexagonal two-parameter series) rather than
the cell size, which says nothing about the system. The wavelength only shifts the axis too. Each
log bin takes the maximum of the 2θ points it covers (or of the two bracketing points where a bin is
narrower than the 2θ step), so no peak falls between samples. 57 k parameters. Better than
``fast`` on synthetic val patterns, worse on the real-structure hold-out: not shipped (docs/models.md).
"""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, serialization

CONFIGS = {
    "fast": {"arch": "fast", "downsample": 4, "channels": [8, 16, 32, 64, 64],
             "kernels": [7, 7, 5, 5, 3], "hidden": 128, "dropout": 0.2,
             "lr": 2e-3, "weight_decay": 1e-4, "batch": 256, "steps": 6000, "eval_every": 500,
             "patience": 4, "balance_power": 0.5},
    "logq": {"arch": "logq", "log_bins": 2048, "two_theta_low": 2.0, "input_step": 0.02,
             "input_start": 0.0, "channels": [8, 16, 32, 48, 64, 64], "kernels": [9, 7, 5, 5, 5, 3],
             "hidden": 128, "dropout": 0.2,
             "lr": 2e-3, "weight_decay": 1e-4, "batch": 256, "steps": 6000, "eval_every": 500,
             "patience": 4, "balance_power": 0.5},
    "paper": {"arch": "paper", "downsample": 1, "lr": 1e-3, "weight_decay": 1e-4, "batch": 64,
              "steps": 200000, "eval_every": 2000, "patience": 50, "balance_power": 1.0,
              "dropout": 0.3},
}


class FastCNN(nnx.Module):
    def __init__(self, cfg: dict, rngs: nnx.Rngs):
        self.downsample = int(cfg.get("downsample", 1))
        chans = [1, *cfg["channels"]]
        self.convs = nnx.List([nnx.Conv(chans[i], chans[i + 1], kernel_size=(k,), padding="SAME", rngs=rngs)
                               for i, k in enumerate(cfg["kernels"])])
        self.hidden = nnx.Linear(2 * chans[-1], cfg["hidden"], rngs=rngs)
        self.drop = nnx.Dropout(cfg["dropout"], rngs=rngs)
        self.out = nnx.Linear(cfg["hidden"], 7, rngs=rngs)

    def _input(self, x):
        n = (x.shape[1] // self.downsample) * self.downsample
        return x[:, :n].reshape(x.shape[0], -1, self.downsample).mean(-1)

    def __call__(self, x):
        x = jnp.sqrt(jnp.clip(self._input(x), 0.0, None))[..., None]
        for i, conv in enumerate(self.convs):
            x = nnx.relu(conv(x))
            if i < len(self.convs) - 1:
                x = nnx.max_pool(x, window_shape=(2,), strides=(2,))
        x = jnp.concatenate([x.mean(axis=1), x.max(axis=1)], axis=-1)
        x = self.drop(nnx.relu(self.hidden(x)))
        return self.out(x)


def log_q_index(n_in: int, start: float, step: float, low: float, bins: int) -> np.ndarray:
    """Gather indices (bins × k) into a 2θ grid: bin j's maximum over them is its log-Q value.

    Bins are equal steps of ln sin²θ from 2θ = ``low`` to the grid's end; each lists the 2θ points
    inside it plus the two bracketing ones, padded by repetition (max is unaffected)."""
    tt = start + step * np.arange(n_in)
    s2 = np.log(np.sin(np.radians(np.array([low, tt[-1]]) / 2)) ** 2)
    edges = np.exp(np.linspace(s2[0], s2[1], bins + 1))             # sin²θ at the bin edges
    edges_tt = 2 * np.degrees(np.arcsin(np.sqrt(edges)))
    pos = (edges_tt - start) / step                                   # fractional input index
    lo = np.clip(np.floor(pos[:-1]).astype(int), 0, n_in - 1)
    hi = np.clip(np.ceil(pos[1:]).astype(int), 0, n_in - 1)
    k = int((hi - lo).max()) + 1
    idx = lo[:, None] + np.arange(k)[None, :]
    return np.minimum(idx, hi[:, None]).astype(np.int32)


_log_q_index = lru_cache(maxsize=8)(log_q_index)


class LogQCNN(FastCNN):
    """FastCNN's body on the log-Q resampled profile instead of the ×4-averaged one."""

    def __init__(self, cfg: dict, rngs: nnx.Rngs):
        super().__init__(cfg, rngs)
        # a hashable key, not an array attribute: nnx keeps plain attributes in the static graph
        self.resample = (int(cfg.get("input_points", 4501)), float(cfg["input_start"]),
                         float(cfg["input_step"]), float(cfg["two_theta_low"]), int(cfg["log_bins"]))

    def _input(self, x):
        return jnp.take(x, jnp.asarray(_log_q_index(*self.resample)), axis=1).max(-1)  # (batch, bins)


class PaperCNN(nnx.Module):
    def __init__(self, cfg: dict, rngs: nnx.Rngs):
        spec = [(80, 200), (160, 100), (240, 50)]
        chans = [1] + [c for c, _ in spec]
        self.convs = nnx.List([nnx.Conv(chans[i], c, kernel_size=(k,), strides=(2,), padding="SAME", rngs=rngs)
                               for i, (c, k) in enumerate(spec)])
        self.drops = nnx.List([nnx.Dropout(cfg["dropout"], rngs=rngs) for _ in spec])
        # 4501 → stride 2 / pool 3 three times → 42 positions × 240 channels
        n = 4501
        for _ in spec:
            n = -(-n // 2) // 3
        dims = [n * 240, 2800, 1400, 700, 70]
        self.dense = nnx.List([nnx.Linear(dims[i], dims[i + 1], rngs=rngs) for i in range(4)])
        self.norms = nnx.List([nnx.BatchNorm(dims[i + 1], rngs=rngs) for i in range(4)])
        self.out = nnx.Linear(70, 7, rngs=rngs)

    def __call__(self, x):
        x = x[..., None]
        for conv, drop in zip(self.convs, self.drops):
            x = drop(nnx.relu(conv(x)))
            x = nnx.avg_pool(x, window_shape=(3,), strides=(3,))
        x = x.reshape(x.shape[0], -1)
        for i, (dense, norm) in enumerate(zip(self.dense, self.norms)):
            x = norm(dense(x))
            x = jnp.tanh(x) if i == 3 else nnx.relu(x)
        return self.out(x)


def build(cfg: dict, seed: int = 0) -> nnx.Module:
    cls = {"fast": FastCNN, "logq": LogQCNN, "paper": PaperCNN}[cfg["arch"]]
    return cls(cfg, nnx.Rngs(seed))


def n_params(model) -> int:
    return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))))


def to_bytes(model) -> bytes:
    """Weights (and batch-norm statistics) as msgpack: plain arrays, nothing executable."""
    state = nnx.state(model, nnx.Not(nnx.RngState))
    return serialization.msgpack_serialize(jax.tree_util.tree_map(np.asarray, nnx.to_pure_dict(state)))


def from_bytes(cfg: dict, data: bytes) -> nnx.Module:
    """Rebuild the network from its msgpack weights without running the random initialisers
    (an abstract model via eval_shape, then the stored arrays): 0.06 s instead of 4.6 s (measured)."""
    abstract = nnx.eval_shape(lambda: build(cfg))
    graphdef, params, rest = nnx.split(abstract, nnx.Not(nnx.RngState), ...)
    nnx.replace_by_pure_dict(params, serialization.msgpack_restore(data))
    # RNG state only feeds dropout, which is off in eval mode: placeholders of the right shape suffice
    rest = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype) if hasattr(s, "shape") else s,
                                  rest)
    model = nnx.merge(graphdef, params, rest)
    model.eval()
    return model
