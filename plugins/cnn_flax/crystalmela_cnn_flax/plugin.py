"""Registers the CNN classifier. Its input is the core's ``profile`` feature (gridded intensities in
[0, 1]) on the paper grid; jax/flax stay unimported until a trained model is loaded, so listing plugins
and reading files stay fast."""
from __future__ import annotations

from pathlib import Path

from crystalmela import PAPER_GRID, ClassifierSpec, hookimpl
from crystalmela.models import require_model

NAME = "cnn_flax"


def load(dataset: str):
    require_model(NAME, Path(__file__).parent, dataset)
    raise NotImplementedError("loading trained cnn_flax models arrives with the models issue")


@hookimpl
def crystalmela_classifiers():
    return [ClassifierSpec(NAME, "0.1.0", feature="profile", load=load, grid=PAPER_GRID,
                           description="1-D CNN on the full profile (CrystalMELA paper §3.1)")]
