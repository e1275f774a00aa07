"""crystalmela: the crystal system of a powder diffraction pattern from several complementary models.

The public API: ``predict(path)`` / ``Predictor`` and the records they use. The folder tree is the
architecture: ``plugin_api/`` (all a plugin may import), ``pipeline/`` (read → grid → features →
classify → ensemble → Prediction), ``simulation/``, ``dataset/``, ``training/``, ``evaluation/``,
``trees/``, ``cli/``, ``web/``; ``plugins.py`` loads the plugins.
"""
from crystalmela.pipeline.predictor import Predictor, predict, predict_pattern
from crystalmela.pipeline.quality import QualityError, QualitySettings
from crystalmela.plugin_api.peaklist import Peak, PeakList, PeakSearchSettings, find_peaks
from crystalmela.pipeline.reading import read_pattern
from crystalmela.pipeline.result import Prediction
from crystalmela.plugin_api import (CRYSTAL_SYSTEMS, DATASETS, PAPER_GRID, ClassifierSpec, CrystalmelaError, Evidence,
                                    FeatureExtractor, GridSpec, Model, ModelNotAvailableError, NoReaderError, Pattern,
                                    PatternError, PluginConflictError, PluginLoadError, ReaderError, ReaderSpec,
                                    UnknownModelError, crystal_system, hookimpl)
from crystalmela.plugins import get_registry

__all__ = [
    "CRYSTAL_SYSTEMS", "DATASETS", "PAPER_GRID", "ClassifierSpec", "CrystalmelaError", "Evidence", "FeatureExtractor",
    "GridSpec", "Model", "ModelNotAvailableError", "NoReaderError", "Pattern", "PatternError", "Peak", "PeakList", "PeakSearchSettings", "Prediction",
    "PluginConflictError", "PluginLoadError", "Predictor", "QualityError", "QualitySettings", "ReaderError", "ReaderSpec", "UnknownModelError",
    "crystal_system", "find_peaks", "get_registry", "hookimpl", "predict", "predict_pattern", "read_pattern",
]
__version__ = "0.1.0"
