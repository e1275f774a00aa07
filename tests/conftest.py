from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import crystalmela
from crystalmela import plugins

REAL = Path(__file__).parent / "data" / "real"


@pytest.fixture
def real() -> Path:
    return REAL


@pytest.fixture(autouse=True)
def _fresh_plugins(monkeypatch):
    """Every test starts and ends with freshly loaded plugins and default settings."""
    for var in ("CRYSTALMELA_PLUGINS", "CRYSTALMELA_STRICT_PLUGINS", "CRYSTALMELA_MAX_FILE_MB"):
        monkeypatch.delenv(var, raising=False)
    plugins.reset()
    yield
    plugins.reset()


class ConstModel:
    """A trained-model stand-in whose answer depends on its input, so the pipeline is really exercised:
    probability mass moves toward 'cubic' as the number of peaks falls."""

    def __init__(self, bias):
        self.bias = np.asarray(bias, dtype=float)

    def predict_proba(self, X):
        X = np.asarray(X, dtype=float)
        n = X.reshape(len(X), -1)[:, -1:]  # last feature
        logits = self.bias[None, :] - 0.01 * n * np.arange(7)[None, ::-1]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


class ToyPlugin:
    """A throwaway plugin: one feature extractor and two classifiers (one of them broken on purpose)."""

    @crystalmela.hookimpl
    def crystalmela_feature_extractors(self):
        def n_peaks(p):
            from crystalmela.features import peak_indices
            return np.array([float(len(peak_indices(p, prominence=50)))])
        return [crystalmela.FeatureExtractor("toy_npeaks", "1", n_peaks)]

    @crystalmela.hookimpl
    def crystalmela_classifiers(self):
        def load_a(ds):
            return ConstModel([0, 0, 0, 0, 2.0, 1.0, 0])

        def load_b(ds):
            return ConstModel([0, 0, 0, 0, 1.0, 2.0, 0])

        def load_broken(ds):
            raise RuntimeError("weights corrupted")

        return [crystalmela.ClassifierSpec("toy_a", "1", feature="toy_npeaks", load=load_a),
                crystalmela.ClassifierSpec("toy_b", "1", feature="toy_npeaks", load=load_b,
                                           datasets=("full", "inorganic")),
                crystalmela.ClassifierSpec("toy_broken", "1", feature="toy_npeaks", load=load_broken)]


@pytest.fixture
def toy():
    """Register the toy plugin for one test, then remove it (datasette-style yield fixture)."""
    name = plugins.register(ToyPlugin(), "toy")
    yield name
    plugins.unregister(name)


@pytest.fixture
def xy_file(tmp_path) -> Path:
    from writers import xy
    p = tmp_path / "pattern.xy"
    xy(p)
    return p
