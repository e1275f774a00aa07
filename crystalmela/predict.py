"""The pipeline: reader → Pattern → (per classifier) grid → features → probabilities → ensemble → Prediction."""
from __future__ import annotations

import os
from typing import Iterable, Mapping

import numpy as np

from .calibration import ensemble_defaults, preprocess_of, scale, temperature_of
from .errors import CrystalmelaError, PatternError, UnknownModelError
from .pattern import Pattern
from .plugins import Registry, get_registry
from .preprocess import PreprocessSettings
from .preprocess import preprocess as apply_preprocess
from .reading import read_pattern
from .result import Prediction, as_probabilities, top_two
from .specs import Evidence
from .systems import CRYSTAL_SYSTEMS, DATASETS
from .wavelengths import anode_wavelength, check_wavelength


def resolve_wavelength(wavelength: float | None = None, anode: str | None = None) -> float | None:
    """The user's wavelength (Å): an explicit value or an anode's Kα1; both at once is an error."""
    if wavelength is not None and anode is not None:
        raise CrystalmelaError("give either a wavelength or an anode, not both")
    if anode is not None:
        return anode_wavelength(anode)
    return None if wavelength is None else check_wavelength(wavelength, "wavelength")


def _check_probs(name: str, raw) -> np.ndarray:
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


def _select(registry: Registry, models: Iterable[str] | None, dataset: str) -> list[str]:
    if dataset not in DATASETS:
        raise UnknownModelError(f"unknown data set {dataset!r}; expected one of {', '.join(DATASETS)}")
    if models is None:
        return sorted(registry.classifiers)
    if isinstance(models, str):            # "cnn_flax" or "a,b" as the CLI takes it, not its letters
        models = models.split(",")
    names = [m.strip() for m in models if m.strip()]
    if not names:
        raise UnknownModelError("no model chosen: name at least one of "
                                f"{', '.join(sorted(registry.classifiers))}, or leave the choice out for all")
    for n in names:
        registry.classifier(n)  # raises with the list of installed models
    return list(dict.fromkeys(names))


UNSURE_BELOW = 0.5


def predict_pattern(pattern: Pattern, models: Iterable[str] | None = None, dataset: str = "full", *,
                    wavelength: float | None = None, weights: Mapping[str, float] | None = None,
                    registry: Registry | None = None, preprocess: PreprocessSettings | None = None,
                    calibrate: bool = True, unsure_below: float = UNSURE_BELOW, explain: bool = True) -> Prediction:
    """Run every chosen classifier on one pattern and combine them.

    ``preprocess``: the clean-up applied after gridding; None = each model's own (what its card says
    it was trained with). ``calibrate``: apply each model's fitted temperature. The prediction is
    flagged ``unsure`` when the ensemble's top-1 probability is below ``unsure_below``. ``explain``:
    gather what each model's features found (``FeatureExtractor.explain``) into ``evidence`` (lines)
    and ``evidence_data`` (the same as data, from extractors that return an ``Evidence``).

    Each model runs on its own: a failure becomes an entry of ``errors`` and the others still answer.
    If every model fails because the pattern cannot be put on their grid, the input is at fault and a
    :class:`PatternError` is raised instead.
    """
    registry = registry or get_registry()
    names = _select(registry, models, dataset)
    check_weights(weights)
    if not 0.0 <= unsure_below <= 1.0:
        raise CrystalmelaError(f"unsure_below {unsure_below}: expected a probability in [0, 1]")
    gridded: dict = {}
    feats: dict = {}
    probs: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    versions: dict[str, str] = {}
    pattern_errors: list[str] = []
    notes: list[str] = []
    applied: dict[str, str] = {}
    temperatures: dict[str, float] = {}
    said: dict = {}
    evidence: dict[str, list[str]] = {}
    evidence_data: dict[str, dict] = {}
    for name in names:
        spec = registry.classifier(name)
        versions[name] = spec.version
        try:
            if spec.grid not in gridded:
                gridded[spec.grid] = pattern.to_grid(spec.grid, wavelength)
            model = registry.model(name, dataset)
            pre = preprocess_of(model) if preprocess is None else preprocess
            key = (spec.grid, spec.feature, pre)
            if key not in feats:
                ready = apply_preprocess(gridded[spec.grid], pre)
                extractor = registry.feature(spec.feature)
                feats[key] = np.asarray(extractor.extract(ready))
                said[key] = _explain(extractor, ready, notes) if explain else ([], {})
            applied[name] = pre.describe()
            p = _check_probs(name, model.predict_proba(feats[key][None, ...]))
            t = temperature_of(model) if calibrate else 1.0
            if t != 1.0:
                p = scale(p, t)
                temperatures[name] = t
            probs[name] = p
            lines, data = said[key]
            if lines:
                evidence[name] = lines
            if data:
                evidence_data[name] = data
        except PatternError as exc:
            pattern_errors.append(str(exc))
            errors[name] = str(exc)
        except CrystalmelaError as exc:
            errors[name] = str(exc)
        except Exception as exc:  # a model bug: report it beside the others' answers
            errors[name] = f"failed: {type(exc).__name__}: {exc}"
    if not probs and pattern_errors and len(pattern_errors) == len(names):
        raise PatternError(pattern_errors[0])
    for g in gridded.values():
        notes.extend(n for n in g.notes if n not in notes)

    ensemble: dict[str, float] = {}
    if probs:
        # the weights and temperature fitted for exactly these models, unless the user chose weights
        fitted, t = (None, 1.0) if weights or errors else \
            ensemble_defaults({n: registry.model(n, dataset) for n in probs}, dataset)
        if fitted:
            notes.append("ensemble weights fitted on val patterns: "
                         + ", ".join(f"{n} {w:.2f}" for n, w in sorted(fitted.items())))
        combined = registry.pm.hook.crystalmela_combine(probabilities=probs,
                                                        weights=dict(weights or fitted or {}), dataset=dataset)
        try:
            combined = _check_probs("ensemble combiner", combined)
            if calibrate and t != 1.0:
                combined = scale(combined, t)
                temperatures["ensemble"] = t
            ensemble = as_probabilities(combined)
        except CrystalmelaError as exc:
            errors["ensemble"] = str(exc)
    top1, top2 = top_two(ensemble)
    used_wl = wavelength or pattern.wavelength
    unsure = bool(ensemble) and ensemble[top1] < unsure_below
    return Prediction(path=pattern.source or "<pattern>", dataset=dataset,
                      per_model={n: as_probabilities(p) for n, p in probs.items()}, ensemble=ensemble,
                      top1=top1, top2=top2, errors=errors, reader=pattern.reader,
                      wavelength=used_wl, notes=notes, model_versions=versions,
                      preprocessing=applied, temperatures=temperatures, unsure=unsure,
                      unsure_below=unsure_below, evidence=evidence, evidence_data=evidence_data)


def _explain(extractor, pattern: Pattern, notes: list[str]) -> tuple[list[str], dict]:
    """The extractor's ``explain`` lines and data (``Evidence.data``; {} for bare lines) for the
    pattern it just saw; a failure or a wrong return becomes a note (the prediction stands without
    it)."""
    if extractor.explain is None:
        return [], {}
    try:
        said = extractor.explain(pattern)
    except Exception as exc:  # a plugin bug: say so, keep the answer
        notes.append(f"feature extractor {extractor.name} could not explain what it found: "
                     f"{type(exc).__name__}: {exc}")
        return [], {}
    if isinstance(said, Evidence):
        return said.lines, said.data
    if not isinstance(said, (list, tuple)) or not all(isinstance(x, str) for x in said):
        notes.append(f"feature extractor {extractor.name}: explain returned {type(said).__name__}, "
                     f"expected a list of lines of text or an Evidence")
        return [], {}
    return list(said), {}


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
        out[i] = _check_probs("ensemble combiner", combined)
    return out


def predict(path: str | os.PathLike, models: Iterable[str] | None = None, dataset: str = "full", *,
            wavelength: float | None = None, anode: str | None = None, reader: str | None = None,
            weights: Mapping[str, float] | None = None, preprocess: PreprocessSettings | None = None,
            calibrate: bool = True, unsure_below: float = UNSURE_BELOW, explain: bool = True) -> Prediction:
    """Predict the crystal system of the pattern in ``path``.

    :param models: classifier names (default: every installed classifier).
    :param dataset: ``full``, ``organic`` or ``inorganic``: which trained models to use.
    :param wavelength: wavelength (Å) of the measurement; overrides the file's own.
    :param anode: instead of ``wavelength``, the tube anode (Cu, Co, Mo, Cr, Fe, Ag) for its Kα1.
    :param reader: force a reader by name (see ``crystalmela readers``).
    :param weights: per-model weights for the ensemble (default 1 each).
    :param preprocess: clean-up after gridding (``crystalmela.preprocess.parse("ka2,background")``);
        default: what each model was trained with.
    :param calibrate: apply each model's fitted temperature (default on).
    :param unsure_below: flag the result ``unsure`` when the ensemble's top-1 is below this.
    :param explain: fill ``evidence`` with what each model's features found (lattice_fit: the cells
        that index the peaks), when their extractor says, and ``evidence_data`` with the same as data.
    """
    wl = resolve_wavelength(wavelength, anode)
    registry = get_registry()
    names = _select(registry, models, dataset)  # fail on a bad model name before reading anything
    pattern = read_pattern(path, reader=reader, registry=registry)
    return predict_pattern(pattern, names, dataset, wavelength=wl, weights=weights, registry=registry,
                           preprocess=preprocess, calibrate=calibrate, unsure_below=unsure_below,
                           explain=explain)
