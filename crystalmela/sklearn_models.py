"""scikit-learn models as data: saved and loaded with skops (no pickle), adapted to the 7 systems.

For classifier plugins built on scikit-learn (ours and anyone's): ``save`` writes a compressed skops
file; ``load`` refuses any type outside a short allow-list before anything is constructed, so a
model file cannot run code; ``ProbaModel`` returns probabilities in canonical class order even when
a class was absent from training.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import CrystalmelaError, ModelNotAvailableError
from .systems import CRYSTAL_SYSTEMS

# Everything a fitted forest of decision trees contains, beyond skops' default-trusted types.
TRUSTED = frozenset({
    "sklearn.tree._tree.Tree",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
})


def save(model, path: str | Path) -> None:
    import skops.io as sio
    sio.dump(model, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)


def load(path: str | Path):
    import skops.io as sio
    try:
        untrusted = set(sio.get_untrusted_types(file=path))
    except Exception as exc:
        raise ModelNotAvailableError(f"{path}: not a readable skops model file: {exc}") from None
    refused = untrusted - TRUSTED
    if refused:
        raise ModelNotAvailableError(f"{path}: refuses to load types outside the allow-list: "
                                     + ", ".join(sorted(refused)))
    return sio.load(path, trusted=sorted(untrusted))


class ProbaModel:
    """predict_proba in CRYSTAL_SYSTEMS order for a classifier trained on labels 0..6."""

    def __init__(self, model):
        classes = np.asarray(model.classes_)
        if not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0 or classes.max() > 6:
            raise ModelNotAvailableError("model classes are not crystal-system indices 0–6")
        if hasattr(model, "n_jobs"):
            model.n_jobs = 1  # one pattern at a time: a thread pool costs more than it saves (measured)
        self.model = model
        self._cols = classes.astype(int)

    def predict_proba(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X[None, :]
        p = self.model.predict_proba(X)
        out = np.zeros((len(X), len(CRYSTAL_SYSTEMS)))
        out[:, self._cols] = p
        return out


def train_forest(request, make_estimator, config: dict, *, weights: str = "model.skops"):
    """Fit a scikit-learn estimator on the request's features, score it on the val split, save it
    with skops and write the model card. Returns the card."""
    import time

    from .metrics import classification_metrics

    X, y = request.features("train")
    Xv, yv = request.features("val")
    est = make_estimator(config, request.seed)
    t0 = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - t0
    model = ProbaModel(est)
    request.out_dir.mkdir(parents=True, exist_ok=True)
    save(est, request.out_dir / weights)
    metrics = {"val": classification_metrics(yv, model.predict_proba(Xv)),
               "train_size": int(len(y)), "train_per_class": np.bincount(y, minlength=7).tolist(),
               "fit_seconds": round(fit_s, 1)}
    return request.write_card(weights, settings=dict(config), metrics=metrics,
                              libraries=("scikit-learn", "skops"))


def named_config(model: str, configs: dict[str, dict], default: str, user: dict) -> dict:
    """A named configuration (``user["name"]``, else ``default``) updated with the user's other keys."""
    user = dict(user)
    name = user.pop("name", default)
    if name not in configs:
        raise CrystalmelaError(f"unknown {model} configuration {name!r}; known: {', '.join(configs)}")
    return {**configs[name], **user}


def load_model(name: str, feature: str, package_dir: str | Path, dataset: str) -> ProbaModel:
    """A plugin's verified skops model for ``dataset`` (``package_dir/models/<dataset>/``)."""
    from .modelcard import read_verified
    from .models import require_model
    card, weights = read_verified(require_model(name, package_dir, dataset))
    if card.feature != feature:
        raise ModelNotAvailableError(f"{weights}: trained on feature {card.feature!r}, not {feature!r}")
    return ProbaModel(load(weights))
