"""Training a classifier plugin's models on a built data set, calibrating them and installing them.

``train(model, data)`` is what ``crystalmela train`` runs: for each data set it trains into a
staging folder, fits the model's temperature on val patterns it never saw, and only then swaps the
new folder in where ``predict`` looks (the one it replaces is kept as ``<dataset>.previous``), so a
failed or interrupted run leaves the installed model as it was.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.plugin_api.modelcard import ModelCard
from crystalmela.plugin_api.systems import DATASETS
from crystalmela.training.request import TrainRequest

__all__ = ["TrainRequest", "Trained", "train"]


@dataclass
class Trained:
    """One data set's finished training: the card written, where the model now is, the folder it
    replaced (None when there was none) and the calibration record (None when not calibrated)."""
    dataset: str
    card: ModelCard
    path: Path
    previous: Path | None
    calibration: dict | None


def train(model: str, data: str | Path, datasets: str | tuple[str, ...] = "full", *, out: str | Path | None = None,
          calibrate: bool = True, registry=None, on_done: Callable[[Trained], None] | None = None,
          **settings) -> list[Trained]:
    """Train classifier ``model`` on the build in ``data`` for ``datasets`` ("all" for every one) and
    install each result in ``out/<dataset>`` (default: the plugin's own model folder).

    ``settings`` are TrainRequest fields (``config``, ``seed``, ``augment``, ``preprocess``,
    ``max_train``, ``max_val``, ``workers``, ``progress``). ``on_done`` is called after each data set
    (the CLI prints its line there)."""
    from crystalmela.plugins import get_registry
    registry = registry or get_registry()
    spec = registry.classifier(model)
    if spec.train is None:
        raise CrystalmelaError(f"classifier {spec.name!r} does not offer training")
    data = Path(data)
    if not (data / "dataset.json").exists():
        raise CrystalmelaError(f"--data {data}: not a built data set (run `crystalmela dataset build`)")
    root = Path(out) if out else (Path(spec.model_root) if spec.model_root else None)
    if root is None:
        raise CrystalmelaError(f"classifier {spec.name!r} names no model folder; give --out DIR")
    done = []
    for ds in DATASETS if datasets == "all" else ((datasets,) if isinstance(datasets, str) else datasets):
        target, staging = root / ds, root / f".{ds}.training"
        shutil.rmtree(staging, ignore_errors=True)
        req = TrainRequest.of(spec, ds, data, staging, **{"config": {}, **settings})
        try:
            card = spec.train(req)
            cal = None
            if spec.load_dir is not None and calibrate:
                from crystalmela.training.calibration import calibrate_trained
                cal = calibrate_trained(spec, req)
            previous = swap_in(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        done.append(Trained(ds, card, target, previous, cal))
        if on_done is not None:
            on_done(done[-1])
    return done


def swap_in(staging: Path, target: Path) -> Path | None:
    """Move a finished model folder into place; the folder it replaces becomes ``<name>.previous``
    (an older one there is dropped). Returns that folder, or None when there was nothing to keep."""
    previous = None
    if target.exists():
        previous = target.with_name(f"{target.name}.previous")
        shutil.rmtree(previous, ignore_errors=True)
        target.rename(previous)
    try:
        staging.rename(target)
    except OSError as exc:
        if previous is not None:
            previous.rename(target)          # the installed model back where predict looks
        raise CrystalmelaError(f"{target}: could not put the trained model in place: {exc.strerror}") from None
    return previous
