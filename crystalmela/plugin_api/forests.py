"""scikit-learn forests as classifier plugins: trained with scikit-learn, shipped and loaded as data.

For classifier plugins built on scikit-learn trees (ours and anyone's): ``train_forest`` fits an
estimator on a TrainRequest's features, exports it with ``crystalmela.trees.forest`` (random forests, extra
trees, single trees) — an ``.npz`` of plain
arrays, opened without pickle, so a model file cannot run code — and writes the card; ``load_model``
reads it back after the card's checks. Prediction does not import scikit-learn.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crystalmela.plugin_api.errors import CrystalmelaError, ModelNotAvailableError
from crystalmela.trees.forest import Forest
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

WEIGHTS = "model.npz"
FORESTS = ("RandomForestClassifier", "ExtraTreesClassifier")


def save(model, path: str | Path) -> None:
    """Export a fitted scikit-learn forest or tree to ``path``."""
    Forest.from_sklearn(model).save(path)


def load(path: str | Path) -> Forest:
    return Forest.load(path)


def train_forest(request, make_estimator, config: dict, *, weights: str = WEIGHTS):
    """Fit a scikit-learn estimator on the request's features, export it, score the exported forest
    (the file that ships) on the val split and write the model card. Returns the card."""
    import time

    from crystalmela.evaluation.metrics import classification_metrics

    est = make_estimator(config, request.seed)        # a bad setting fails before the features
    X, y = request.features("train")
    Xv, yv = request.features("val")
    t0 = time.perf_counter()
    try:
        est.fit(X, y)
    except ValueError as exc:    # e.g. early stopping cannot stratify a class with one pattern
        raise CrystalmelaError(f"{request.name}: scikit-learn refused to fit {type(est).__name__} on "
                               f"{len(y)} patterns ({np.bincount(y, minlength=7).tolist()} per class): {exc}") from None
    fit_s = time.perf_counter() - t0
    request.out_dir.mkdir(parents=True, exist_ok=True)
    save(est, request.out_dir / weights)
    model = load(request.out_dir / weights)
    metrics = {"val": classification_metrics(yv, model.predict_proba(Xv)),
               **({"val_clean": classification_metrics(yv, model.predict_proba(
                   request.features("val", augment=False)[0]))} if request.augment is not None else {}),
               "train_size": int(len(y)), "train_per_class": np.bincount(y, minlength=7).tolist(),
               "fit_seconds": round(fit_s, 1)}
    return request.write_card(weights, settings=dict(config), metrics=metrics,
                              libraries=("scikit-learn",))


def named_config(model: str, configs: dict[str, dict], default: str, user: dict) -> dict:
    """A named configuration (``user["name"]``, else ``default``) updated with the user's other keys."""
    user = dict(user)
    name = user.pop("name", default)
    if name not in configs:
        raise CrystalmelaError(f"unknown {model} configuration {name!r}; known: {', '.join(configs)}")
    return {**configs[name], **user}


def load_model(name: str, feature: str, package_dir: str | Path, dataset: str) -> Forest:
    """A plugin's verified forest for ``dataset`` (``package_dir/models/<dataset>/``)."""
    from crystalmela.plugin_api.modelcard import require_model
    return load_dir(feature, require_model(name, package_dir, dataset))


def load_dir(feature: str, directory: str | Path) -> Forest:
    """The verified forest in a model folder written by ``train_forest``."""
    from crystalmela.plugin_api.modelcard import read_verified
    card, weights = read_verified(directory)
    if card.feature != feature:
        raise ModelNotAvailableError(f"{weights}: trained on feature {card.feature!r}, not {feature!r}")
    import dataclasses
    return dataclasses.replace(load(weights), card=card)


def forest_classifier(name: str, version: str, *, feature: str, package_dir: str | Path,
                      configs: dict[str, dict], default: str, estimator: str, description: str = ""):
    """The ClassifierSpec of a scikit-learn forest plugin: load from ``package_dir/models/``,
    ``load_dir``, and ``train`` with the named ``configs`` (``default`` unless the user names one).
    ``estimator`` is a class of ``sklearn.ensemble`` (imported only when training), fitted with all
    cores and the request's seed; a configuration may name the other (its ``"estimator"`` key:
    ``RandomForestClassifier`` or ``ExtraTreesClassifier``, the forests ``crystalmela.trees.forest``
    exports). Our forest plugins are built with it; so can anyone's."""
    from crystalmela.plugin_api.pattern import PAPER_GRID
    from crystalmela.plugin_api.specs import ClassifierSpec
    package_dir = Path(package_dir)

    def load(dataset: str) -> Forest:
        return load_model(name, feature, package_dir, dataset)

    def make_estimator(config: dict, seed: int):
        import sklearn.ensemble
        config = dict(config)
        name = config.pop("estimator", estimator)
        if name not in FORESTS:
            raise CrystalmelaError(f"{name!r} is not a forest this plugin can export; expected one of "
                                   f"{', '.join(FORESTS)}")
        cls = getattr(sklearn.ensemble, name)
        config["n_jobs"] = -1
        try:
            est = cls(**config, random_state=seed)
            getattr(est, "_validate_params", lambda: None)()     # ranges too, before any feature
        except (TypeError, ValueError) as exc:
            raise CrystalmelaError(f"bad {name} setting in the configuration: {exc}") from None
        return est

    def train(request):
        return train_forest(request, make_estimator, named_config(name, configs, default, request.config))

    return ClassifierSpec(name, version, feature=feature, load=load, grid=PAPER_GRID, train=train,
                          load_dir=lambda directory: load_dir(feature, directory),
                          model_root=str(package_dir / "models"), description=description)


__all__ = ["FORESTS", "WEIGHTS", "forest_classifier", "load", "load_dir", "load_model", "named_config", "save", "train_forest"]
