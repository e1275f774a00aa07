"""The ensemble: each model's probabilities checked, scaled to its fitted temperature, and combined
through the ``crystalmela_combine`` hook with the weights and temperature fitted for exactly the
installed set of models (records in ``crystalmela/ensembles/``, or the folder ``CRYSTALMELA_ENSEMBLES``
names).

Temperature scaling (Guo et al. 2017): p_T = softmax(log p / T). T > 1 softens an over-confident
model, T < 1 sharpens a timid one; the ranking never changes. Forest leaves give exact zeros, so
log p is taken of p clipped at ``EPS``.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np

from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS
from crystalmela.plugins import Registry, get_registry

__all__ = ["ENSEMBLES_ENV", "EPS", "EnsembleFit", "check_probs", "check_weights", "combine_rows", "ensemble_defaults",
           "ensemble_fit", "ensemble_folders", "ensemble_subset_fit", "preprocess_of", "scale", "temperature_of"]

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


def temperature_of(model) -> float:
    """The fitted temperature a loaded model's card records (1.0 when none)."""
    cal = getattr(model.card, "calibration", None) or {}
    t = cal.get("temperature", 1.0)
    return float(t) if isinstance(t, (int, float)) and t > 0 else 1.0


def preprocess_of(model):
    """The PreprocessSettings a loaded model was trained with (none when its card does not say)."""
    from crystalmela.pipeline.preprocess import NONE, PreprocessSettings
    settings = getattr(model.card, "settings", None) or {}
    pre = settings.get("preprocess")
    return PreprocessSettings(**pre) if pre else NONE


def check_probs(name: str, raw) -> np.ndarray:
    p = np.asarray(raw, dtype=float)
    if p.shape == (1, len(CRYSTAL_SYSTEMS)):
        p = p[0]
    if p.shape != (len(CRYSTAL_SYSTEMS),):
        raise CrystalmelaError(f"{name} returned probabilities of shape {p.shape}, expected (7,)")
    if not np.all(np.isfinite(p)) or np.any(p < -1e-9):
        raise CrystalmelaError(f"{name} returned invalid probabilities {p.tolist()}")
    total = p.sum()
    if abs(total - 1.0) > 1e-3:
        raise CrystalmelaError(f"{name} returned probabilities summing to {total:.4f}, not 1")
    return np.clip(p, 0, None) / p.clip(0, None).sum()


def check_weights(weights: Mapping[str, float] | None) -> None:
    """User-given ensemble weights: finite, non-negative, not all zero (else a clear error, before
    any model runs, rather than the combiner failing after)."""
    if not weights:
        return
    numbers = {n: w for n, w in weights.items()
               if isinstance(w, (int, float, np.integer, np.floating)) and not isinstance(w, bool)}
    if len(numbers) < len(weights):
        n = next(n for n in weights if n not in numbers)
        raise CrystalmelaError(f"ensemble weight of {n!r} is {weights[n]!r}, not a number")
    bad = {n: w for n, w in numbers.items() if not (np.isfinite(w) and w >= 0)}
    if bad or sum(numbers.values()) <= 0:
        raise CrystalmelaError("ensemble weights must be finite, non-negative and not all zero; got "
                               + ", ".join(f"{n}={w:g}" for n, w in weights.items()))


def combine_rows(probabilities: Mapping[str, np.ndarray], dataset: str = "full", *,
                 weights: Mapping[str, float] | None = None, registry: Registry | None = None) -> np.ndarray:
    """The ensemble of many patterns at once: ``probabilities[name]`` is an (n, 7) array per model;
    the combiner hook is called row by row, exactly as for a single prediction."""
    registry = registry or get_registry()
    check_weights(weights)
    names = list(probabilities)
    n = len(next(iter(probabilities.values())))
    out = np.empty((n, len(CRYSTAL_SYSTEMS)))
    for i in range(n):
        combined = registry.pm.hook.crystalmela_combine(
            probabilities={m: np.asarray(probabilities[m][i], dtype=float) for m in names},
            weights=dict(weights or {}), dataset=dataset)
        out[i] = check_probs("ensemble combiner", combined)
    return out




# ------------------------------------------------------------------------------------- ensemble
# Averaging calibrated models is not calibrated (models that disagree spread the mass: on lab-like
# patterns the mean is under-confident), and equal weights let weak models outvote a strong one. The
# ensemble gets its own weights and temperature, fitted for one exact set of installed models
# (identified by their weights' sha256); any other combination, or weights the user chose, is shown
# uncalibrated with the weights given, and the result says which temperatures ran.
ENSEMBLES_ENV = "CRYSTALMELA_ENSEMBLES"


def ensemble_folders(registry=None) -> list[Path]:
    """Where ensemble fits are looked for: the folder ``CRYSTALMELA_ENSEMBLES`` names (one a user can
    write to when the packages are installed read-only, or a candidate's fits), then the folders the
    plugins offer (``crystalmela_ensemble_fits``). ``crystalmela calibrate`` writes to the first."""
    if registry is None:
        from crystalmela.plugins import get_registry
        registry = get_registry()
    env = os.environ.get(ENSEMBLES_ENV)
    return ([Path(env)] if env else []) + list(registry.ensemble_dirs)


class EnsembleFit(NamedTuple):
    """A fitted ensemble record that matches the loaded models: where it is, its weights (None for
    a fit with equal weights), its temperature and the whole record (``fitted_on``, ``accuracy`` …)."""
    path: Path
    weights: dict | None
    temperature: float
    record: dict


def ensemble_fit(models: dict, dataset: str, folder: Path | None = None, registry=None) -> EnsembleFit | None:
    """The fit for exactly these loaded ``models`` (name → model with a ``card``) from ``folder`` or
    else the first of ``ensemble_folders`` holding one; None when none was fitted for them."""
    for candidate in ([folder] if folder else ensemble_folders(registry)):
        found = _fit_in(candidate / f"{dataset}.json", models)
        if found is not None:
            return found
    return None


def ensemble_subset_fit(models: dict, dataset: str, registry=None) -> EnsembleFit | None:
    """For a subset of a fitted ensemble (the user chose fewer models, or one failed): the fit's
    weights kept for ``models`` only — the pooling divides by their sum, so they are renormalised —
    and temperature 1, since the fitted temperature belongs to the whole set. None when no fit holds
    these exact models among more."""
    for candidate in ensemble_folders(registry):
        found = _fit_in(candidate / f"{dataset}.json", models, subset=True)
        if found is not None:
            return found
    return None


def ensemble_defaults(models: dict, dataset: str, folder: Path | None = None,
                      registry=None) -> tuple[dict | None, float]:
    """(weights, temperature) of ``ensemble_fit``; ``(None, 1.0)`` when none was fitted for these
    models. Weights are None for records fitted with equal weights."""
    found = ensemble_fit(models, dataset, folder, registry)
    return (None, 1.0) if found is None else (found.weights, found.temperature)


def _fit_in(path: Path, models: dict, subset: bool = False) -> EnsembleFit | None:
    """The fit a record holds for exactly ``models`` (``subset``: for more models, these among
    them, with their weights only and temperature 1); None when the file is missing, damaged, or
    fitted for other models."""
    if not path.is_file():
        return None
    try:
        st = path.stat()
        rec = _ensemble_record(str(path), st.st_mtime_ns, st.st_size)
        shas = {n: getattr(m.card, "sha256", None) for n, m in models.items()}
        fitted = rec.get("models")
        if not isinstance(fitted, dict):
            return None
        if subset:
            if len(fitted) <= len(shas) or any(fitted.get(n) != sha for n, sha in shas.items()):
                return None
        elif fitted != shas:
            return None
        t = float(rec["temperature"])
        w = rec.get("weights")
        if not (w == "default" or isinstance(w, dict)):
            return None
        if isinstance(w, dict):
            every = {n: float(w[n]) for n in fitted}       # the whole record must be sound
            if not (all(np.isfinite(v) and v >= 0 for v in every.values()) and sum(every.values()) > 0):
                return None
            weights = {n: every[n] for n in shas}
            if sum(weights.values()) <= 0:
                return None
        else:
            weights = None
    except (ValueError, KeyError, TypeError):
        return None
    return EnsembleFit(path, weights, 1.0 if subset else (t if t > 0 else 1.0), rec)


@lru_cache(maxsize=16)
def _ensemble_record(path: str, mtime_ns: int, size: int) -> dict:
    """The parsed record, read once per file version (predict calls this for every pattern)."""
    return json.loads(Path(path).read_text())


