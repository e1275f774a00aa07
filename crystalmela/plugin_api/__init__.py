"""Everything a plugin may import from crystalmela, and nothing else: the hook marker, the records
hooks return, the Pattern they receive, the errors they raise; and, in their own modules, the helpers
built-in plugins use (``peaks``, ``peaklist`` for the peak search on measured data, ``modelcard``, ``forests`` for scikit-learn forests, ``testing`` for
contract checks, ``training`` for what a plugin's ``train`` receives). Built-in plugins import only
this package; a third party's plugin should too. See docs/plugins.md.
"""
from crystalmela.plugin_api.errors import (CrystalmelaError, ModelNotAvailableError, NoReaderError, PatternError,
                                           PluginConflictError, PluginLoadError, ReaderError, UnknownModelError,
                                           settings_problem)
from crystalmela.plugin_api.hookspecs import hookimpl
from crystalmela.plugin_api.limits import max_file_bytes, max_unpacked_bytes
from crystalmela.plugin_api.pattern import PAPER_GRID, GridSpec, Pattern, d_to_two_theta, two_theta_to_d
from crystalmela.plugin_api.specs import ClassifierSpec, Evidence, FeatureExtractor, Model, ReaderSpec
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS, DATASETS, crystal_system
from crystalmela.plugin_api.wavelengths import ANODES_KA1, CU_KA1, CU_KA2, anode_wavelength, check_wavelength

__all__ = [
    "ANODES_KA1", "CRYSTAL_SYSTEMS", "CU_KA1", "CU_KA2", "DATASETS", "PAPER_GRID", "ClassifierSpec", "CrystalmelaError",
    "Evidence", "FeatureExtractor", "GridSpec", "Model", "ModelNotAvailableError", "NoReaderError", "Pattern",
    "PatternError", "PluginConflictError", "PluginLoadError", "ReaderError", "ReaderSpec", "UnknownModelError",
    "anode_wavelength", "check_wavelength", "crystal_system", "d_to_two_theta", "hookimpl", "max_file_bytes", "max_unpacked_bytes", "settings_problem",
    "two_theta_to_d",
]
