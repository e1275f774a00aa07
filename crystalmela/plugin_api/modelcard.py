"""Model cards: what produced a trained model file, and the check that the file is the one described.

Every shipped model is a weights file that loads without executing code (an .npz of arrays for forests, msgpack for networks) plus
``model_card.json``. Loading verifies the weights' sha256 and that the classes are the seven crystal
systems in canonical order, so a swapped, truncated or foreign file is refused with a clear error.
"""
from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crystalmela.plugin_api.errors import ModelNotAvailableError, settings_problem
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

CARD = "model_card.json"


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str
    model_version: str
    dataset: str = Field(description="full / organic / inorganic")
    classes: list[str]
    weights: str = Field(description="weights file name, beside the card")
    sha256: str
    size_bytes: int
    feature: str
    feature_version: str = Field("", description="version of the feature extractor the model was "
                                 "trained on; a model is refused when the installed one differs "
                                 "(empty on cards written before it was recorded: not checked)")
    data: dict = Field(default_factory=dict, description="data set path, sha256, counts per class")
    settings: dict = Field(default_factory=dict)
    metrics: dict = Field(default_factory=dict)
    libraries: dict = Field(default_factory=dict)
    code_version: str = ""
    created: str = ""
    calibration: dict | None = Field(None, description="temperature scaling fitted after training "
                                     "(crystalmela.training.calibration): temperature, data, ECE before/after")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def library_versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for n in ("crystalmela", "numpy", "scipy", *names):
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            pass
    return out


def write_card(directory: str | Path, *, weights: str, **fields) -> ModelCard:
    """Write model_card.json for ``directory/weights`` (hash and size measured here)."""
    directory = Path(directory)
    wpath = directory / weights
    card = ModelCard(weights=weights, sha256=sha256_file(wpath), size_bytes=wpath.stat().st_size,
                     classes=list(CRYSTAL_SYSTEMS), created=datetime.now(timezone.utc).isoformat(
                         timespec="seconds"), **fields)
    (directory / CARD).write_text(json.dumps(card.model_dump(), indent=1) + "\n")
    return card


def read_verified(directory: str | Path) -> tuple[ModelCard, Path]:
    """The card and weights path of a model folder, after checking hash and classes."""
    directory = Path(directory)
    path = directory / CARD
    try:
        card = ModelCard(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise ModelNotAvailableError(f"{path}: no model card") from None
    except (ValueError, ValidationError) as exc:
        raise ModelNotAvailableError(f"{path}: not a valid model card: {settings_problem(exc)}") from None
    weights = directory / card.weights
    if not weights.is_file():
        raise ModelNotAvailableError(f"{weights}: weights file named by the model card is missing")
    digest = sha256_file(weights)
    if digest != card.sha256:
        raise ModelNotAvailableError(f"{weights}: sha256 {digest[:12]}… does not match the model card's "
                                     f"{card.sha256[:12]}… (corrupted or replaced file)")
    if list(card.classes) != list(CRYSTAL_SYSTEMS):
        raise ModelNotAvailableError(f"{path}: classes {card.classes} are not the seven crystal "
                                     "systems in canonical order")
    return card, weights


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


__all__ = ["CARD", "ModelCard", "library_versions", "model_dir", "read_verified", "require_model", "sha256_file", "write_card"]
