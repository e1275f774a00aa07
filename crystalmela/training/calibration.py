"""Temperature scaling (Guo et al. 2017): one scalar per model, fitted on held-out patterns, so that
the probabilities shown mean what they say. Stored in the model card; the core applies it.

p_T = softmax(log p / T): T > 1 softens an over-confident model, T < 1 sharpens a timid one; the
ranking (top-1, top-2) never changes. Forest leaves give exact zeros, so log p is taken of p clipped
at ``EPS``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crystalmela.evaluation.metrics import reliability
from crystalmela.pipeline.ensemble import (ENSEMBLES_ENV, EPS, combine_rows, ensemble_folders, preprocess_of, scale,
                                          temperature_of)



def nll(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], EPS, 1.0))))


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The T in [0.05, 20] minimising the negative log-likelihood of labels ``y``."""
    from scipy.optimize import minimize_scalar
    y = np.asarray(y)
    res = minimize_scalar(lambda lt: nll(scale(p, float(np.exp(lt))), y), bounds=(np.log(0.05), np.log(20)),
                          method="bounded", options={"xatol": 1e-3})
    return float(np.exp(res.x))


def calibration_record(p: np.ndarray, y: np.ndarray, data: str) -> dict:
    """Fit T and return what goes into the card: T, the data it was fitted on, NLL and ECE before/after."""
    t = fit_temperature(p, y)
    q = scale(p, t)
    return {"method": "temperature", "temperature": round(t, 4), "fitted_on": data, "n": int(len(y)),
            "nll_before": round(nll(p, y), 4), "nll_after": round(nll(q, y), 4),
            "ece_before": round(reliability(y, p)["ece"], 4), "ece_after": round(reliability(y, q)["ece"], 4)}


def write_calibration(model_dir: str | Path, record: dict) -> None:
    """Put ``record`` into the card of ``model_dir`` (the weights, and their hash, are untouched)."""
    from crystalmela.plugin_api.modelcard import CARD, read_verified
    read_verified(model_dir)
    path = Path(model_dir) / CARD
    card = json.loads(path.read_text())
    card["calibration"] = record
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(card, indent=1) + "\n")
    tmp.replace(path)


def calibrate_trained(spec, request, n: int = 4000, batch: int = 500) -> dict:
    """Fit and store the temperature of the model ``spec.train(request)`` just wrote: on up to ``n``
    val-split patterns rendered as the request renders training ones (augmented when it augments),
    which the model never saw. Works for any plugin that offers ``load_dir``. Features that training
    cached for those patterns are reused rather than computed again."""
    from crystalmela.plugin_api.errors import CrystalmelaError
    from crystalmela.plugins import get_registry
    if spec.load_dir is None:
        raise CrystalmelaError(f"classifier {spec.name!r} has no load_dir; cannot calibrate what it wrote")
    model = spec.load_dir(request.out_dir)
    extract = get_registry().feature(spec.feature).extract
    rset = request.reflections("val")
    idx = np.sort(np.random.default_rng(request.seed).permutation(len(rset))[:n])
    cached = request.cached_features(rset.ids[idx])
    probs = []
    for start in range(0, len(idx), batch):
        if cached is not None:
            X = cached[start:start + batch]
        else:
            X = np.stack([np.asarray(extract(p)) for p in request.patterns(rset, idx[start:start + batch])])
        probs.append(np.asarray(model.predict_proba(X), dtype=float))
    kind = describe_rendering(request.augment)
    record = calibration_record(np.concatenate(probs), rset.labels[idx],
                                f"{len(idx)} {kind} patterns of the val split of {request.data}")
    write_calibration(request.out_dir, record)
    return record


def fit_weights(probs: dict, y: np.ndarray) -> dict:
    """Non-negative weights of the log-linear pool (the core's weighted geometric mean) that maximise
    the likelihood of labels ``y``, scaled to mean 1. The pool's sharpness is left to the temperature
    fitted after it. Log-probabilities are clipped at ``EPS`` as the combiner clips them."""
    from scipy.optimize import minimize
    names = sorted(probs)
    y = np.asarray(y)
    logs = np.stack([np.log(np.clip(np.asarray(probs[n], float), EPS, 1.0)) for n in names])  # (m, n, 7)
    rows = np.arange(len(y))

    def loss(a):
        z = np.tensordot(a, logs, axes=1)
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        soft = np.exp(z - lse[:, None])
        grad = -(logs[:, rows, y] - np.einsum("mnk,nk->mn", logs, soft)).mean(axis=1)
        return -(z[rows, y] - lse).mean(), grad

    res = minimize(loss, np.full(len(names), 1.0 / len(names)), jac=True, method="L-BFGS-B",
                   bounds=[(0.0, None)] * len(names))
    a = np.maximum(res.x, 0.0)
    if not np.isfinite(a).all() or a.sum() <= 0:
        return {n: 1.0 for n in names}
    return {n: round(float(v), 4) for n, v in zip(names, a / a.sum() * len(names))}


def crossfit_accuracy(probs: dict, y: np.ndarray, dataset: str = "full", registry=None) -> float:
    """Top-1 of the fitted pool with each half of the rows (alternate rows) scored by the weights
    fitted on the other half: the fitted weights' accuracy on patterns they were not fitted on."""
    y = np.asarray(y)
    halves = (np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1)
    right = 0
    for fit_on, score_on in (halves, halves[::-1]):
        w = fit_weights({m: np.asarray(p)[fit_on] for m, p in probs.items()}, y[fit_on])
        pooled = combine_rows({m: np.asarray(p)[score_on] for m, p in probs.items()}, dataset,
                              weights=w, registry=registry)
        right += int((pooled.argmax(axis=1) == y[score_on]).sum())
    return right / max(len(y), 1)


def describe_rendering(augment) -> str:
    """How val patterns were rendered, for a record's ``fitted_on``: "clean", "lab-condition
    augmented" (the default ``AugmentSettings``), or that with the settings that differ from the
    default named (a ``--augment FILE.json`` fit is not mistaken for a default one)."""
    if augment is None:
        return "clean"
    from crystalmela.simulation.augment import AugmentSettings
    default = AugmentSettings()
    changed = [f"{k} {v}" for k, v in augment.model_dump().items() if v != getattr(default, k)]
    return "lab-condition augmented" + (f" ({', '.join(changed)})" if changed else "")


def val_probabilities(dataset: str, data: str | Path, *, n: int = 4000, seed: int = 0, augment=None,
                      registry=None, batch: int = 500) -> tuple[dict, np.ndarray, dict]:
    """Each installed model's probabilities (at its temperature) on the same ``n`` val-split
    patterns of ``data``, rendered under ``augment`` and fed as in training: (probs, labels, sha256s).
    The rows are those ``crystalmela train --max-val n --seed seed`` scores, and a model's features
    come from the training feature cache when it holds them all."""
    from crystalmela.plugin_api.errors import CrystalmelaError
    from crystalmela.plugins import get_registry
    from crystalmela.training.request import TrainRequest
    registry = registry or get_registry()
    names = sorted(registry.classifiers)
    probs, shas, y = {}, {}, None
    for name in names:
        spec = registry.classifier(name)
        model = registry.model(name, dataset)
        card = model.card
        if card is None:
            raise CrystalmelaError(f"{name}: its model carries no card, so the ensemble's temperature "
                                   "could not be tied to these weights")
        shas[name] = card.sha256
        # max_val=n draws the val rows as `crystalmela train --max-val n --seed seed` does, so the
        # features training cached for them (same extractor version, grid, augmentation and seed)
        # are read back instead of computed again (full, n = 500: 26 s against 104 s; docs/robustness.md).
        req = TrainRequest.of(spec, dataset, data, data, seed=seed, augment=augment,
                              preprocess=preprocess_of(model), progress=False, max_val=n)
        extract = registry.feature(spec.feature).extract
        rset = req.reflections("val")
        if len(rset) == 0:
            raise CrystalmelaError(f"{data}: the {dataset} data set has no val-split patterns to fit on")
        cached = req.cached_features(rset.ids)
        out_p = []
        for start in range(0, len(rset), batch):
            if cached is not None:
                X = cached[start:start + batch]
            else:
                rows = np.arange(start, min(start + batch, len(rset)))
                X = np.stack([np.asarray(extract(p)) for p in req.patterns(rset, rows)])
            out_p.append(np.asarray(model.predict_proba(X), dtype=float))
        probs[name] = scale(np.concatenate(out_p), temperature_of(model))
        y = rset.labels
    return probs, y, shas


def fit_ensemble(dataset: str, data: str | Path, *, n: int = 4000, seed: int = 0, augment=None,
                 registry=None, out: Path | None = None, equal_weights: bool = False) -> dict:
    """Fit the weights (unless ``equal_weights``) and temperature of the installed models' ensemble
    on ``n`` val-split patterns of the built data set ``data`` (rendered under ``augment``, each model
    fed as in training and at its own temperature) and write ``<dataset>.json`` to ``out``, else to
    the first of ``ensemble_folders``. Returns the record, with the top-1 of equal weights beside that of the fitted ones, and the
    fitted ones' top-1 cross-fitted (``crossfit_accuracy``: fitted on one half, scored on the other),
    and where it was written (``path``); a different fit already there is kept as
    ``<dataset>.previous.json`` (``previous``), not lost."""
    from crystalmela.plugin_api.errors import CrystalmelaError
    from crystalmela.plugins import get_registry
    registry = registry or get_registry()
    probs, y, shas = val_probabilities(dataset, data, n=n, seed=seed, augment=augment, registry=registry)
    equal = combine_rows(probs, dataset, registry=registry)
    weights = None if equal_weights or len(probs) < 2 else fit_weights(probs, y)
    ens = equal if weights is None else combine_rows(probs, dataset, weights=weights, registry=registry)
    kind = describe_rendering(augment)
    record = calibration_record(ens, y, f"{len(y)} {kind} patterns of the val split of {data}")
    record.update({"dataset": dataset, "models": shas, "weights": weights or "default",
                   "accuracy": float((ens.argmax(axis=1) == y).mean()),
                   "accuracy_equal_weights": float((equal.argmax(axis=1) == y).mean())})
    if weights is not None:
        record["accuracy_crossfit"] = crossfit_accuracy(probs, y, dataset, registry=registry)
    folders = [out] if out else ensemble_folders(registry)
    if not folders:
        raise CrystalmelaError("no folder for the ensemble's fit: no plugin offers one "
                               f"(crystalmela_ensemble_fits); give --out or set {ENSEMBLES_ENV}")
    folder = folders[0]
    path = folder / f"{dataset}.json"
    text = json.dumps(record, indent=1) + "\n"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        previous = None
        if path.exists() and path.read_text() != text:
            # one level of undo: a fit on a few patterns must not silently replace the shipped one
            previous = path.with_name(f"{dataset}.previous.json")
            previous.write_text(path.read_text())
        tmp = path.with_name(f".{dataset}.json.tmp")
        tmp.write_text(text)
        tmp.replace(path)                  # whole or not at all: predict never reads half a file
    except OSError as exc:
        raise CrystalmelaError(f"{path}: cannot write the ensemble's fit: {exc.strerror}; give --out "
                               "a folder you can write to") from None
    return {**record, "path": str(path), "previous": str(previous) if previous else None}
