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


def pytest_addoption(parser):
    parser.addini("crystalmela_shared_data", "folder of shared structures and instrument files "
                  "(relative to the rootdir); CRYSTALMELA_SHARED_DATA overrides it", default="")


def shared_data_dir(config) -> Path | None:
    import os
    value = os.environ.get("CRYSTALMELA_SHARED_DATA") or config.getini("crystalmela_shared_data")
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute():
        path = Path(config.rootpath) / path
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_cifs(pytestconfig) -> list[Path]:
    """The real-structure hold-out CIFs (never trained on); skips if the shared folder is absent."""
    root = shared_data_dir(pytestconfig)
    files = sorted((root / "cif").glob("*/*.cif")) if root else []
    if not files:
        pytest.skip("shared structure folder not found (set CRYSTALMELA_SHARED_DATA)")
    return files


@pytest.fixture(scope="session")
def shared_crystals(shared_cifs) -> list:
    """(path, first crystal) of every hold-out CIF the reader accepts (the others are skipped, as
    the hold-out evaluation skips them)."""
    from crystalmela.simulation.structure import StructureError, read_cif
    out = []
    for path in shared_cifs:
        try:
            out.append((path, read_cif(path)[0]))
        except StructureError:
            continue
    return out


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
            from crystalmela.plugin_api.peaks import peak_indices
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
