"""Registers the CNN classifier. Its input is the core's ``profile`` feature (gridded intensities in
[0, 1]) on the paper grid; jax/flax stay unimported until a model is loaded or trained, so listing
plugins and reading files stay fast."""
from __future__ import annotations

from pathlib import Path

from crystalmela.plugin_api import PAPER_GRID, ClassifierSpec, hookimpl
from crystalmela.plugin_api.modelcard import read_verified
from crystalmela.plugin_api.modelcard import require_model

NAME = "cnn_flax"
MODEL_ROOT = Path(__file__).parent / "models"


class _Predictor:
    """Model protocol over a Flax network: batched, jitted, softmax in canonical class order."""

    def __init__(self, net, card=None):
        self.card = card  # the core reads the preprocessing and calibration it records
        import jax
        from flax import nnx
        self._fn = nnx.jit(lambda m, x: jax.nn.softmax(m(x), axis=-1))
        self.net = net

    def predict_proba(self, X):
        import numpy as np
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X[None, :]
        return np.asarray(self._fn(self.net, X), dtype=float)


def load(dataset: str):
    return load_dir(require_model(NAME, Path(__file__).parent, dataset))


def load_dir(directory):
    card, weights = read_verified(directory)
    from .network import from_bytes
    return _Predictor(from_bytes(card.settings["network"], weights.read_bytes()), card)


def train(request):
    from .training import train as _train
    return _train(request)


@hookimpl
def crystalmela_classifiers():
    return [ClassifierSpec(NAME, "0.2.0", feature="profile", load=load, grid=PAPER_GRID, train=train,
                           load_dir=load_dir, model_root=str(MODEL_ROOT),
                           description="1-D CNN on the full profile (Flax NNX; paper §3.1 or a fast design)")]
