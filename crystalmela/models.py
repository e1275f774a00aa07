"""Where a classifier plugin keeps its trained models, and the error when none is installed yet."""
from __future__ import annotations

from pathlib import Path

from .errors import ModelNotAvailableError


def model_dir(package_dir: str | Path, dataset: str) -> Path:
    """``<package>/models/<dataset>/``: one weights file plus ``model_card.json`` per data set."""
    return Path(package_dir) / "models" / dataset


def require_model(name: str, package_dir: str | Path, dataset: str) -> Path:
    """The model folder of ``name`` for ``dataset``, or a ModelNotAvailableError saying what is missing."""
    d = model_dir(package_dir, dataset)
    card = d / "model_card.json"
    if not card.is_file():
        raise ModelNotAvailableError(
            f"no trained {name} model for data set {dataset!r} is installed (expected {card.name} in "
            f"{d}); train one with `crystalmela train --model {name} --dataset {dataset}`")
    return d
