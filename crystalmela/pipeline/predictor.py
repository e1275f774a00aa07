"""The pipeline: reader → Pattern → (per classifier) grid → features → probabilities → ensemble → Prediction.

:class:`Predictor` is the one way in: the CLI, the web service and the evaluations all build one
(the models chosen and checked once) and call it per file or per pattern.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping

import numpy as np

from crystalmela.pipeline.ensemble import (check_probs, check_weights, ensemble_fit, ensemble_subset_fit, preprocess_of,
                                          scale, temperature_of)
from crystalmela.plugin_api.errors import CrystalmelaError, PatternError, UnknownModelError
from crystalmela.plugin_api.pattern import Pattern
from crystalmela.plugins import Registry, get_registry
from crystalmela.pipeline.preprocess import PreprocessSettings
from crystalmela.pipeline.preprocess import preprocess as apply_preprocess
from crystalmela.pipeline.quality import DEFAULT as DEFAULT_QUALITY
from crystalmela.pipeline.quality import QualityError, QualitySettings, assess
from crystalmela.pipeline.reading import read_pattern
from crystalmela.pipeline.result import Prediction, as_probabilities, top_two
from crystalmela.plugin_api.specs import Evidence
from crystalmela.plugin_api.systems import DATASETS
from crystalmela.plugin_api.wavelengths import anode_wavelength, check_wavelength


def resolve_wavelength(wavelength: float | None = None, anode: str | None = None) -> float | None:
    """The user's wavelength (Å): an explicit value or an anode's Kα1; both at once is an error."""
    if wavelength is not None and anode is not None:
        raise CrystalmelaError("give either a wavelength or an anode, not both")
    if anode is not None:
        return anode_wavelength(anode)
    return None if wavelength is None else check_wavelength(wavelength, "wavelength")


def select_models(registry: Registry, models: Iterable[str] | None, dataset: str) -> list[str]:
    """The classifier names ``models`` asks for (every installed one for None; "a,b" as the CLI takes
    it), each checked to be installed, in the order given; an unknown name or data set is an error."""
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


class _Run:
    """What one pattern's run gathers, model by model: the predictor's working state for one call."""

    def __init__(self):
        self.gridded: dict = {}
        self.features: dict = {}
        self.said: dict = {}
        self.probs: dict[str, np.ndarray] = {}
        self.errors: dict[str, str] = {}
        self.pattern_errors: list[str] = []
        self.notes: list[str] = []
        self.applied: dict[str, str] = {}
        self.temperatures: dict[str, float] = {}
        self.evidence: dict[str, list[str]] = {}
        self.evidence_data: dict[str, dict] = {}


class Predictor:
    """The chosen models of one data set, ready to predict pattern after pattern.

    ``models``: classifier names (None: every installed one); ``weights``: the user's ensemble
    weights (default: the ones fitted for exactly these models, else equal); ``preprocess``: the
    clean-up applied after gridding (None: each model's own, from its card); ``calibrate``: apply the
    fitted temperatures; a prediction is flagged ``unsure`` when the ensemble's top-1 is below
    ``unsure_below``; ``explain``: gather what each model's features found into ``evidence``;
    ``quality``: the data-quality gate's thresholds (None: no gate), which refuses junk before any
    model runs and flags doubtful data ``unsure``. Bad choices fail here, before any file is read.
    """

    def __init__(self, models: Iterable[str] | None = None, dataset: str = "full", *,
                 weights: Mapping[str, float] | None = None, preprocess: PreprocessSettings | None = None,
                 calibrate: bool = True, unsure_below: float = UNSURE_BELOW, explain: bool = True,
                 quality: QualitySettings | None = DEFAULT_QUALITY, registry: Registry | None = None):
        self.registry = registry or get_registry()
        self.models = select_models(self.registry, models, dataset)
        check_weights(weights)
        stray = [n for n in (weights or {}) if n not in self.models]
        if stray:
            raise UnknownModelError(f"ensemble weight given for {', '.join(map(repr, stray))}, not among the chosen "
                                    f"models ({', '.join(self.models)})")
        if not 0.0 <= unsure_below <= 1.0:
            raise CrystalmelaError(f"unsure_below {unsure_below}: expected a probability in [0, 1]")
        if isinstance(preprocess, str):               # as the CLI's --preprocess takes it
            from crystalmela.pipeline.preprocess import parse
            preprocess = parse(preprocess)
        elif preprocess is not None and not isinstance(preprocess, PreprocessSettings):
            raise CrystalmelaError(f"preprocess: expected steps such as 'ka2,smooth=9', PreprocessSettings or None, "
                                   f"got {type(preprocess).__name__}")
        self.dataset, self.weights, self.preprocess = dataset, dict(weights or {}), preprocess
        self.calibrate, self.unsure_below, self.explain = calibrate, unsure_below, explain
        if quality is not None and not isinstance(quality, QualitySettings):
            raise CrystalmelaError(f"quality: expected QualitySettings or None, got {type(quality).__name__}")
        self.quality = quality

    def read(self, path: str | os.PathLike, reader: str | None = None) -> Pattern:
        """The pattern in ``path``, read as ``predict`` reads it (a reader by name, else chosen)."""
        return read_pattern(path, reader=reader, registry=self.registry)

    def predict_path(self, path: str | os.PathLike, *, reader: str | None = None,
                     wavelength: float | None = None) -> Prediction:
        """Read ``path`` and predict it."""
        check_path(path)
        return self.predict_pattern(self.read(path, reader), wavelength=wavelength)

    def predict_pattern(self, pattern: Pattern, wavelength: float | None = None) -> Prediction:
        """Run every chosen classifier on one pattern and combine them.

        Each model runs on its own: a failure becomes an entry of ``errors`` and the others still
        answer. If every model fails because the pattern cannot be put on their grid, the input is at
        fault and a :class:`PatternError` is raised instead."""
        if not isinstance(pattern, Pattern):
            raise CrystalmelaError(f"predict_pattern needs a Pattern, got {type(pattern).__name__}")
        grid = self.registry.classifier(self.models[0]).grid
        quality = None
        if self.quality is not None:
            try:
                quality = assess(pattern, grid, wavelength, self.quality)
            except QualityError as exc:
                raise QualityError(f"{pattern.source or '<pattern>'}: refused by the data-quality gate: {exc}") from None
        run = _Run()
        for name in self.models:
            self._run_model(name, pattern, wavelength, run)
        if not run.probs and run.pattern_errors and len(run.pattern_errors) == len(self.models):
            raise PatternError(run.pattern_errors[0])
        for g in run.gridded.values():
            run.notes.extend(n for n in g.notes if n not in run.notes)
        ensemble = self._combine(run) if run.probs else {}
        top1, top2 = top_two(ensemble)
        reasons = list(quality.unsure) if quality else []
        if ensemble and ensemble[top1] < self.unsure_below:
            reasons.insert(0, f"the ensemble gives no system {self.unsure_below:.0%} or more")
        used, source = _wavelength_used(pattern, wavelength, grid.wavelength)
        return Prediction(path=pattern.source or "<pattern>", dataset=self.dataset,
                          per_model={n: as_probabilities(p) for n, p in run.probs.items()}, ensemble=ensemble,
                          top1=top1, top2=top2, errors=run.errors, reader=pattern.reader,
                          wavelength=used, wavelength_source=source, notes=run.notes,
                          model_versions={n: self.registry.classifier(n).version for n in self.models},
                          preprocessing=run.applied, temperatures=run.temperatures,
                          unsure=bool(ensemble) and bool(reasons), unsure_reasons=reasons if ensemble else [],
                          quality=quality.to_json() if quality else None,
                          unsure_below=self.unsure_below, evidence=run.evidence, evidence_data=run.evidence_data)

    def _run_model(self, name: str, pattern: Pattern, wavelength: float | None, run: _Run) -> None:
        """One classifier on the pattern; grids and features are shared by models that share them."""
        spec = self.registry.classifier(name)
        try:
            if spec.grid not in run.gridded:
                run.gridded[spec.grid] = pattern.to_grid(spec.grid, wavelength)
            model = self.registry.model(name, self.dataset)
            pre = preprocess_of(model) if self.preprocess is None else self.preprocess
            key = (spec.grid, spec.feature, pre)
            if key not in run.features:
                ready = apply_preprocess(run.gridded[spec.grid], pre)
                extractor = self.registry.feature(spec.feature)
                run.features[key] = np.asarray(extractor.extract(ready))
                run.said[key] = _explain(extractor, ready, run.notes) if self.explain else ([], {})
            run.applied[name] = pre.describe()
            p = check_probs(name, model.predict_proba(run.features[key][None, ...]))
            t = temperature_of(model) if self.calibrate else 1.0
            if t != 1.0:
                p = scale(p, t)
                run.temperatures[name] = t
            run.probs[name] = p
            lines, data = run.said[key]
            if lines:
                run.evidence[name] = lines
            if data:
                run.evidence_data[name] = data
        except PatternError as exc:
            run.pattern_errors.append(str(exc))
            run.errors[name] = str(exc)
        except CrystalmelaError as exc:
            run.errors[name] = str(exc)
        except Exception as exc:  # a model bug: report it beside the others' answers
            run.errors[name] = f"failed: {type(exc).__name__}: {exc}"

    def _fitted(self, run: _Run) -> tuple[dict | None, float]:
        """The fitted (weights, temperature) for the models that answered, said in the notes: a fit
        for exactly them, else a larger fit's weights renormalised over them (its temperature
        belongs to the whole set, so none), else equal weights."""
        answered = {n: self.registry.model(n, self.dataset) for n in run.probs}
        if len(answered) == 1:
            return None, 1.0                 # one model is its own ensemble
        found = ensemble_fit(answered, self.dataset, registry=self.registry)
        if found is not None:
            if found.weights:
                run.notes.append("ensemble weights fitted on val patterns: "
                                 + ", ".join(f"{n} {w:.2f}" for n, w in sorted(found.weights.items())))
            return found.weights, found.temperature
        found = ensemble_subset_fit(answered, self.dataset, registry=self.registry)
        if found is None:
            if len(run.probs) > 1:
                run.notes.append("no ensemble fit for these models: equal weights, uncalibrated")
            return None, 1.0
        whole = ", ".join(sorted(found.record["models"]))
        if found.weights:
            total = sum(found.weights.values())
            run.notes.append(f"ensemble weights fitted for {whole}, renormalised over the models that answered: "
                             + ", ".join(f"{n} {w / total:.2f}" for n, w in sorted(found.weights.items()))
                             + "; the ensemble temperature (fitted for all of them) not applied")
        else:
            run.notes.append(f"ensemble fitted with equal weights for {whole}; its temperature not applied "
                             "to this subset")
        return found.weights, 1.0

    def _combine(self, run: _Run) -> dict[str, float]:
        """The ensemble of the models that answered: the weights and temperature fitted for them
        unless the user chose weights (``_fitted``). A combiner that raises or returns junk is
        isolated like a model: an ``errors["ensemble"]`` entry, the models' answers stand."""
        fitted, t = (None, 1.0) if self.weights else self._fitted(run)
        if self.weights:
            run.notes.append("ensemble weights as given: " + ", ".join(
                f"{n} {self.weights.get(n, 1.0):g}" for n in sorted(run.probs)))
        try:
            combined = check_probs("ensemble combiner", self.registry.pm.hook.crystalmela_combine(
                probabilities=run.probs, weights=dict(self.weights or fitted or {}), dataset=self.dataset))
        except CrystalmelaError as exc:
            run.errors["ensemble"] = str(exc)
            return {}
        except Exception as exc:  # a combiner plugin's bug
            run.errors["ensemble"] = f"combiner failed: {type(exc).__name__}: {exc}"
            return {}
        if self.calibrate and t != 1.0:
            combined = scale(combined, t)
            run.temperatures["ensemble"] = t
        return as_probabilities(combined)


def predict_pattern(pattern: Pattern, models: Iterable[str] | None = None, dataset: str = "full", *,
                    wavelength: float | None = None, weights: Mapping[str, float] | None = None,
                    registry: Registry | None = None, preprocess: PreprocessSettings | None = None,
                    calibrate: bool = True, unsure_below: float = UNSURE_BELOW, explain: bool = True,
                    quality: QualitySettings | None = DEFAULT_QUALITY) -> Prediction:
    """One pattern through a :class:`Predictor` built with these settings (see there)."""
    return Predictor(models, dataset, weights=weights, preprocess=preprocess, calibrate=calibrate,
                     unsure_below=unsure_below, explain=explain, quality=quality,
                     registry=registry).predict_pattern(pattern, wavelength)


def check_path(path) -> None:
    """A file path, or a clear error for what people pass instead (None, a number, the file's bytes)."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        raise CrystalmelaError(f"expected a file path (str or pathlib.Path), got {type(path).__name__}: for data in "
                               "memory build a crystalmela.Pattern and call predict_pattern")
    if not isinstance(path, (str, os.PathLike)):
        raise CrystalmelaError(f"expected a file path (str or pathlib.Path), got {type(path).__name__}")


def _wavelength_used(pattern: Pattern, given: float | None, grid_wavelength: float) -> tuple[float | None, str]:
    """The wavelength the 2θ axis was read at, and where it came from."""
    if pattern.axis != "2theta":
        return None, f"not needed ({pattern.axis} axis)"
    if given:
        return given, "given"
    if pattern.wavelength:
        return pattern.wavelength, "file"
    return grid_wavelength, "assumed (the models' grid)"


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


def predict(path: str | os.PathLike, models: Iterable[str] | None = None, dataset: str = "full", *,
            wavelength: float | None = None, anode: str | None = None, reader: str | None = None,
            weights: Mapping[str, float] | None = None, preprocess: PreprocessSettings | None = None,
            calibrate: bool = True, unsure_below: float = UNSURE_BELOW, explain: bool = True,
            quality: QualitySettings | None = DEFAULT_QUALITY) -> Prediction:
    """Predict the crystal system of the pattern in ``path``.

    :param models: classifier names (default: every installed classifier).
    :param dataset: ``full``, ``organic`` or ``inorganic``: which trained models to use.
    :param wavelength: wavelength (Å) of the measurement; overrides the file's own.
    :param anode: instead of ``wavelength``, the tube anode (Cu, Co, Mo, Cr, Fe, Ag) for its Kα1.
    :param reader: force a reader by name (see ``crystalmela readers``).
    :param weights: per-model weights for the ensemble (default 1 each).
    :param preprocess: clean-up after gridding: steps as the CLI takes them (``"ka2,background"``) or
        ``PreprocessSettings``; default: what each model was trained with.
    :param calibrate: apply each model's fitted temperature (default on).
    :param unsure_below: flag the result ``unsure`` when the ensemble's top-1 is below this.
    :param explain: fill ``evidence`` with what each model's features found (lattice_fit: the cells
        that index the peaks), when their extractor says, and ``evidence_data`` with the same as data.
    :param quality: the data-quality gate's thresholds (``crystalmela.QualitySettings``; None: no
        gate): junk is refused with a :class:`QualityError` before any model runs, doubtful data
        are answered ``unsure`` with the reasons in ``unsure_reasons``.
    """
    check_path(path)
    wl = resolve_wavelength(wavelength, anode)
    predictor = Predictor(models, dataset, weights=weights, preprocess=preprocess, calibrate=calibrate,
                          unsure_below=unsure_below, explain=explain, quality=quality)   # bad choices fail before reading
    return predictor.predict_path(path, reader=reader, wavelength=wl)
