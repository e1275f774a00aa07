"""crystalmela: the crystal system of a powder diffraction pattern from several complementary models."""
from .errors import (CrystalmelaError, ModelNotAvailableError, NoReaderError, PatternError,
                     PluginConflictError, PluginLoadError, ReaderError, UnknownModelError)
from .pattern import PAPER_GRID, GridSpec, Pattern
from .plugins import get_registry, hookimpl
from .predict import predict, predict_pattern
from .reading import read_pattern
from .result import Prediction
from .specs import ClassifierSpec, Evidence, FeatureExtractor, Model, ReaderSpec
from .systems import CRYSTAL_SYSTEMS, DATASETS, crystal_system

__all__ = [
    "CRYSTAL_SYSTEMS", "DATASETS", "PAPER_GRID", "ClassifierSpec", "CrystalmelaError", "Evidence", "FeatureExtractor",
    "GridSpec", "Model", "ModelNotAvailableError", "NoReaderError", "Pattern", "PatternError", "Prediction",
    "PluginConflictError", "PluginLoadError", "ReaderError", "ReaderSpec", "UnknownModelError",
    "crystal_system", "get_registry", "hookimpl", "predict", "predict_pattern", "read_pattern",
]
__version__ = "0.1.0"
