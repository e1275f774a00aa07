"""Offers ``fits/<dataset>.json``: the weights and temperature ``crystalmela calibrate`` fitted for
the shipped cnn_flax, random_forest, extra_trees and lattice_fit models. Each record names the
sha256 of the model weights it was fitted for, so it is used only while exactly those are loaded;
retrain one and the ensemble falls back to equal weights until ``crystalmela calibrate`` refits it."""
from pathlib import Path

from crystalmela.plugin_api import hookimpl

FITS = Path(__file__).parent / "fits"


@hookimpl
def crystalmela_ensemble_fits():
    return [FITS]
