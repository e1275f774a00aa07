"""Temperature scaling (Guo et al. 2017): one scalar per model, fitted on held-out patterns, so that
the probabilities shown mean what they say. Stored in the model card; the core applies it.

p_T = softmax(log p / T): T > 1 softens an over-confident model, T < 1 sharpens a timid one; the
ranking (top-1, top-2) never changes. Forest leaves give exact zeros, so log p is taken of p clipped
at ``EPS``.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .metrics import reliability

EPS = 1e-4


def scale(p: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities (…, 7) at ``temperature``; rows still sum to 1."""
    p = np.asarray(p, dtype=float)
    if temperature == 1.0:
        return p
    z = np.log(np.clip(p, EPS, 1.0)) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


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
    from .modelcard import CARD, read_verified
    read_verified(model_dir)
    path = Path(model_dir) / CARD
    card = json.loads(path.read_text())
    card["calibration"] = record
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(card, indent=1) + "\n")
    tmp.replace(path)


def temperature_of(model) -> float:
    """The fitted temperature a loaded model's card records (1.0 when none)."""
    card = getattr(model, "card", None)
    cal = getattr(card, "calibration", None) or {}
    t = cal.get("temperature", 1.0)
    return float(t) if isinstance(t, (int, float)) and t > 0 else 1.0


def preprocess_of(model):
    """The PreprocessSettings a loaded model was trained with (none when its card does not say)."""
    from .preprocess import NONE, PreprocessSettings
    card = getattr(model, "card", None)
    settings = getattr(card, "settings", None) or {}
    pre = settings.get("preprocess")
    return PreprocessSettings(**pre) if pre else NONE


def calibrate_trained(spec, request, n: int = 4000, batch: int = 500) -> dict:
    """Fit and store the temperature of the model ``spec.train(request)`` just wrote: on up to ``n``
    val-split patterns rendered as the request renders training ones (augmented when it augments),
    which the model never saw. Works for any plugin that offers ``load_dir``. Features that training
    cached for those patterns are reused rather than computed again."""
    from .errors import CrystalmelaError
    from .plugins import get_registry
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


# ------------------------------------------------------------------------------------- ensemble
# Averaging calibrated models is not calibrated (models that disagree spread the mass: on lab-like
# patterns the mean is under-confident), and equal weights let weak models outvote a strong one. The
# ensemble gets its own weights and temperature, fitted for one exact set of installed models
# (identified by their weights' sha256); any other combination, or weights the user chose, is shown
# uncalibrated with the weights given, and the result says which temperatures ran.
ENSEMBLE_DIR = Path(__file__).parent / "ensembles"


ENSEMBLES_ENV = "CRYSTALMELA_ENSEMBLES"


def ensemble_folders() -> list[Path]:
    """Where ensemble fits are looked for: the folder ``CRYSTALMELA_ENSEMBLES`` names (one a user can
    write to when the package is installed read-only, or a candidate's fits), then the core's own.
    ``crystalmela calibrate`` writes to the first."""
    env = os.environ.get(ENSEMBLES_ENV)
    return [Path(env), ENSEMBLE_DIR] if env else [ENSEMBLE_DIR]


class EnsembleFit(NamedTuple):
    """A fitted ensemble record that matches the loaded models: where it is, its weights (None for
    a fit with equal weights), its temperature and the whole record (``fitted_on``, ``accuracy`` …)."""
    path: Path
    weights: dict | None
    temperature: float
    record: dict


def ensemble_fit(models: dict, dataset: str, folder: Path | None = None) -> EnsembleFit | None:
    """The fit for exactly these loaded ``models`` (name → model with a ``card``) from ``folder`` or
    else the first of ``ensemble_folders`` holding one; None when none was fitted for them."""
    for candidate in ([folder] if folder else ensemble_folders()):
        found = _fit_in(candidate / f"{dataset}.json", models)
        if found is not None:
            return found
    return None


def ensemble_defaults(models: dict, dataset: str, folder: Path | None = None) -> tuple[dict | None, float]:
    """(weights, temperature) of ``ensemble_fit``; ``(None, 1.0)`` when none was fitted for these
    models. Weights are None for records fitted with equal weights."""
    found = ensemble_fit(models, dataset, folder)
    return (None, 1.0) if found is None else (found.weights, found.temperature)


def _fit_in(path: Path, models: dict) -> EnsembleFit | None:
    """The fit a record holds for exactly ``models``; None when the file is missing, damaged, or
    fitted for other models."""
    if not path.is_file():
        return None
    try:
        st = path.stat()
        rec = _ensemble_record(str(path), st.st_mtime_ns, st.st_size)
        shas = {n: getattr(getattr(m, "card", None), "sha256", None) for n, m in models.items()}
        if rec.get("models") != shas:
            return None
        t = float(rec["temperature"])
        w = rec.get("weights")
        if not (w == "default" or isinstance(w, dict)):
            return None
        weights = {n: float(w[n]) for n in shas} if isinstance(w, dict) else None
        if weights and not (all(np.isfinite(v) and v >= 0 for v in weights.values())
                            and sum(weights.values()) > 0):
            return None
    except (ValueError, KeyError, TypeError):
        return None
    return EnsembleFit(path, weights, t if t > 0 else 1.0, rec)


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
    from .predict import combine_rows
    y = np.asarray(y)
    halves = (np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1)
    right = 0
    for fit_on, score_on in (halves, halves[::-1]):
        w = fit_weights({m: np.asarray(p)[fit_on] for m, p in probs.items()}, y[fit_on])
        pooled = combine_rows({m: np.asarray(p)[score_on] for m, p in probs.items()}, dataset,
                              weights=w, registry=registry)
        right += int((pooled.argmax(axis=1) == y[score_on]).sum())
    return right / max(len(y), 1)


@lru_cache(maxsize=16)
def _ensemble_record(path: str, mtime_ns: int, size: int) -> dict:
    """The parsed record, read once per file version (predict calls this for every pattern)."""
    return json.loads(Path(path).read_text())


def describe_rendering(augment) -> str:
    """How val patterns were rendered, for a record's ``fitted_on``: "clean", "lab-condition
    augmented" (the default ``AugmentSettings``), or that with the settings that differ from the
    default named (a ``--augment FILE.json`` fit is not mistaken for a default one)."""
    if augment is None:
        return "clean"
    from .augment import AugmentSettings
    default = AugmentSettings()
    changed = [f"{k} {v}" for k, v in augment.model_dump().items() if v != getattr(default, k)]
    return "lab-condition augmented" + (f" ({', '.join(changed)})" if changed else "")


def val_probabilities(dataset: str, data: str | Path, *, n: int = 4000, seed: int = 0, augment=None,
                      registry=None, batch: int = 500) -> tuple[dict, np.ndarray, dict]:
    """Each installed model's probabilities (at its temperature) on the same ``n`` val-split
    patterns of ``data``, rendered under ``augment`` and fed as in training: (probs, labels, sha256s).
    The rows are those ``crystalmela train --max-val n --seed seed`` scores, and a model's features
    come from the training feature cache when it holds them all."""
    from .errors import CrystalmelaError
    from .plugins import get_registry
    from .training import TrainRequest
    registry = registry or get_registry()
    names = sorted(registry.classifiers)
    probs, shas, y = {}, {}, None
    for name in names:
        spec = registry.classifier(name)
        model = registry.model(name, dataset)
        card = getattr(model, "card", None)
        if card is None:
            raise CrystalmelaError(f"{name}: its model carries no card, so the ensemble's temperature "
                                   "could not be tied to these weights")
        shas[name] = card.sha256
        # max_val=n draws the val rows as `crystalmela train --max-val n --seed seed` does, so the
        # features training cached for them (same extractor version, grid, augmentation and seed)
        # are read back instead of computed again (full, n = 500: 26 s against 104 s; docs/robustness.md).
        req = TrainRequest(name=name, version=spec.version, feature=spec.feature, dataset=dataset,
                           data=Path(data), out_dir=Path(data), grid=spec.grid, seed=seed,
                           augment=augment, preprocess=preprocess_of(model), progress=False, max_val=n)
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
    from .errors import CrystalmelaError
    from .plugins import get_registry
    from .predict import combine_rows
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
    folder = out or ensemble_folders()[0]
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
