"""Plugin manager: loads entry points one by one, records failures instead of crashing, and builds the
registry of readers, feature extractors and classifiers.

Entry points are read with ``importlib.metadata`` (what pluggy itself uses; the ``entrypoints`` package
is in maintenance mode). Settings, read from the environment:

- ``CRYSTALMELA_PLUGINS=a,b``: load only these entry points (the core's own ``core`` always loads).
- ``CRYSTALMELA_STRICT_PLUGINS=1``: raise on the first broken plugin instead of recording it.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import pluggy

from crystalmela.plugin_api import hookspecs
from crystalmela.plugin_api.hookspecs import hookimpl
from crystalmela.plugin_api.errors import ModelNotAvailableError, PluginConflictError, PluginLoadError, UnknownModelError
from crystalmela.plugin_api.specs import ClassifierSpec, FeatureExtractor, Model, ReaderSpec

GROUP = "crystalmela"


@dataclass
class PluginInfo:
    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    module: str | None = None


@dataclass
class PluginFailure:
    name: str
    error: str
    distribution: str | None = None
    version: str | None = None


def _strict() -> bool:
    return os.environ.get("CRYSTALMELA_STRICT_PLUGINS", "").lower() in ("1", "true", "yes")


def _allowed() -> set[str] | None:
    raw = os.environ.get("CRYSTALMELA_PLUGINS")
    if raw is None or not raw.strip():
        return None
    return {p.strip() for p in raw.split(",") if p.strip()} | {"core"}


class Registry:
    """What the installed plugins provide, by name, with the plugin each came from."""

    def __init__(self, pm: pluggy.PluginManager, failures: list[PluginFailure]):
        self.pm = pm
        self.failures = failures
        self.readers: dict[str, ReaderSpec] = {}
        self.features: dict[str, FeatureExtractor] = {}
        self.classifiers: dict[str, ClassifierSpec] = {}
        self.provider: dict[tuple[str, str], str] = {}
        self._models: dict[tuple[str, str], Model] = {}
        self._lock = threading.Lock()
        self._collect("crystalmela_readers", ReaderSpec, self.readers, "reader")
        self._collect("crystalmela_feature_extractors", FeatureExtractor, self.features, "feature extractor")
        self._collect("crystalmela_classifiers", ClassifierSpec, self.classifiers, "classifier")
        self.ensemble_dirs: list[Path] = self._folders("crystalmela_ensemble_fits")

    def _fail(self, plugin: str, message: str, exc: BaseException | None = None) -> None:
        if _strict():
            err = PluginConflictError(message) if exc is None else PluginLoadError(message)
            raise err from exc
        self.failures.append(PluginFailure(plugin, message))

    def _collect(self, hookname: str, kind: type, into: dict, label: str) -> None:
        # Call each implementation on its own: pluggy's hook call would stop at the first exception.
        for impl in getattr(self.pm.hook, hookname).get_hookimpls():
            try:
                records = list(impl.function() or [])
            except Exception as exc:  # a plugin bug must not take the others down
                self._fail(impl.plugin_name, f"{hookname} raised {type(exc).__name__}: {exc}", exc)
                continue
            for rec in records:
                if not isinstance(rec, kind):
                    self._fail(impl.plugin_name, f"{hookname} returned {type(rec).__name__}, "
                                                 f"expected {kind.__name__}")
                    continue
                other = self.provider.get((label, rec.name))
                if other is not None:
                    self._fail(impl.plugin_name, f"{label} {rec.name!r} is already provided by plugin "
                                                 f"{other!r}; plugin {impl.plugin_name!r}'s copy ignored")
                    continue
                into[rec.name] = rec
                self.provider[(label, rec.name)] = impl.plugin_name

    def _folders(self, hookname: str) -> list[Path]:
        out: list[Path] = []
        for impl in getattr(self.pm.hook, hookname).get_hookimpls():
            try:
                folders = list(impl.function() or [])
            except Exception as exc:
                self._fail(impl.plugin_name, f"{hookname} raised {type(exc).__name__}: {exc}", exc)
                continue
            for folder in folders:
                if not isinstance(folder, (str, Path)):
                    self._fail(impl.plugin_name, f"{hookname} returned {type(folder).__name__}, expected a path")
                    continue
                out.append(Path(folder))
        return out

    def reader(self, name: str) -> ReaderSpec:
        try:
            return self.readers[name]
        except KeyError:
            raise UnknownModelError(f"unknown reader {name!r}; installed: "
                                    f"{', '.join(sorted(self.readers)) or 'none'}") from None

    def classifier(self, name: str) -> ClassifierSpec:
        try:
            return self.classifiers[name]
        except KeyError:
            raise UnknownModelError(f"unknown model {name!r}; installed: "
                                    f"{', '.join(sorted(self.classifiers)) or 'none'}") from None

    def feature(self, name: str) -> FeatureExtractor:
        try:
            return self.features[name]
        except KeyError:
            raise UnknownModelError(f"unknown feature extractor {name!r}; installed: "
                                    f"{', '.join(sorted(self.features)) or 'none'}") from None

    def use_model(self, name: str, dataset: str, model: Model) -> None:
        """Answer ``model(name, dataset)`` with ``model`` from now on (e.g. a candidate loaded with
        ``spec.load_dir`` that an evaluation compares with the installed one)."""
        self.classifier(name)
        if not callable(getattr(model, "predict_proba", None)):
            raise ModelNotAvailableError(f"{type(model).__name__} has no predict_proba")
        model = self.adapt(name, dataset, with_card(model))
        with self._lock:
            self._models[(name, dataset)] = model

    def adapt(self, name: str, dataset: str, model: Model) -> Model:
        """``model`` ready for the installed extractor's features: as it is when its card records the
        installed version (or none: cards that predate the record are not checked), fed the first
        columns when it records a version the extractor lists in ``prefixes``. A model trained on any
        other version would answer, silently wrong: it is refused."""
        feature = self.classifier(name).feature
        if feature not in self.features:
            return model
        adapted = for_features(model, self.features[feature])
        if adapted is None:
            raise ModelNotAvailableError(
                f"{name} model for data set {dataset!r} was trained on features {feature!r} version "
                f"{model.card.feature_version}, but the installed extractor computes version "
                f"{self.features[feature].version}: retrain it (crystalmela train --model {name} --dataset {dataset})")
        return adapted

    def model(self, name: str, dataset: str) -> Model:
        """The trained model of classifier ``name`` for ``dataset``, loaded once and cached."""
        spec = self.classifier(name)
        if dataset not in spec.datasets:
            raise ModelNotAvailableError(f"{name} offers no model for data set {dataset!r} "
                                         f"(it has: {', '.join(spec.datasets)})")
        key = (name, dataset)
        with self._lock:
            if key not in self._models:
                model = spec.load(dataset)
                if not callable(getattr(model, "predict_proba", None)):
                    raise ModelNotAvailableError(f"{name}.load({dataset!r}) returned {type(model).__name__}, "
                                                 "which has no predict_proba")
                self._models[key] = self.adapt(name, dataset, with_card(model))
            return self._models[key]


def for_features(model: Model, extractor: FeatureExtractor) -> Model | None:
    """``Registry.adapt``'s rule for one extractor: the model, a ``FirstColumns`` of it, or None when
    its card records a version of ``extractor`` that is neither the installed one nor a prefix."""
    trained = getattr(model.card, "feature_version", "") or ""
    if not trained or trained == extractor.version:
        return model
    if trained in extractor.prefixes:
        return FirstColumns(model, extractor.prefixes[trained])
    return None


def with_card(model) -> Model:
    """``model`` as the :class:`Model` protocol has it: with a ``card`` attribute (None for a model
    its plugin loaded without one)."""
    return model if hasattr(model, "card") else NoCard(model)


class NoCard:
    """A model object that carries no card: ``card`` is None, everything else is the model's."""

    card = None

    def __init__(self, model):
        self.model = model

    def predict_proba(self, X):
        return self.model.predict_proba(X)

    def __getattr__(self, attr):
        return getattr(self.__dict__["model"], attr)


class FirstColumns:
    """A model trained on an earlier version of its features that the installed version only
    extended (``FeatureExtractor.prefixes``): ``predict_proba`` gets the first ``n`` numbers of each
    pattern's features; everything else (``card`` …) is the model's."""

    def __init__(self, model: Model, n: int):
        self.model, self.n = model, n

    def predict_proba(self, X):
        return self.model.predict_proba(np.asarray(X)[..., :self.n])

    def __getattr__(self, attr):
        return getattr(self.__dict__["model"], attr)


class _State:
    pm: pluggy.PluginManager | None = None
    failures: list[PluginFailure] = []
    infos: dict[str, PluginInfo] = {}
    registry: Registry | None = None


_state = _State()
_lock = threading.RLock()


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("crystalmela")
    pm.add_hookspecs(hookspecs)
    return pm


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    pm.register(plugin, name=name)
    # Reject hook names with our prefix that no spec declares (a typo would otherwise be silent).
    specs = {n for n in dir(hookspecs) if n.startswith("crystalmela_")}
    typos = sorted(n for n in dir(plugin) if n.startswith("crystalmela_") and n not in specs
                   and callable(getattr(plugin, n)))
    if typos:
        pm.unregister(plugin)
        raise PluginLoadError(f"implements unknown hook(s) {', '.join(typos)}; known: {', '.join(sorted(specs))}")


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _allowed()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: (e.name != "core", e.name)):
        if allowed is not None and ep.name not in allowed:
            continue
        dist = getattr(ep, "dist", None)
        dname, dver = (dist.name, dist.version) if dist is not None else (None, None)
        if pm.has_plugin(ep.name):
            _state.failures.append(PluginFailure(ep.name, f"entry point name {ep.name!r} is used by two "
                                                          "distributions; this one ignored", dname, dver))
            continue
        try:
            plugin = ep.load()
            _register(pm, plugin, ep.name)
        except Exception as exc:
            if _strict():
                raise PluginLoadError(f"plugin {ep.name!r} ({dname} {dver}) failed to load: "
                                      f"{type(exc).__name__}: {exc}") from exc
            _state.failures.append(PluginFailure(ep.name, f"{type(exc).__name__}: {exc}", dname, dver))
            continue
        _state.infos[ep.name] = PluginInfo(ep.name, dname, dver, module=ep.value)


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with entry points loaded on first use."""
    with _lock:
        if _state.pm is None:
            _state.failures = []
            _state.infos = {}
            pm = _new_manager()
            _load_entry_points(pm)
            _state.pm = pm
        return _state.pm


def get_registry() -> Registry:
    """Readers, features and classifiers of every loaded plugin (built once, rebuilt after changes)."""
    with _lock:
        pm = plugin_manager()
        if _state.registry is None:
            failures = list(_state.failures)
            _state.registry = Registry(pm, failures)
        return _state.registry


def register(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object at run time (tests, notebooks); returns its name."""
    with _lock:
        pm = plugin_manager()
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        _register(pm, plugin, name)
        _state.infos[name] = PluginInfo(name, module=getattr(plugin, "__name__", None))
        _state.registry = None
        return name


def unregister(name: str) -> None:
    with _lock:
        pm = plugin_manager()
        if pm.has_plugin(name):
            pm.unregister(name=name)
        _state.infos.pop(name, None)
        _state.registry = None


def reset() -> None:
    """Forget every loaded plugin; the next use reloads entry points (e.g. after changing settings)."""
    with _lock:
        _state.pm = None
        _state.registry = None
        _state.failures = []
        _state.infos = {}


def list_plugins() -> tuple[list[PluginInfo], list[PluginFailure]]:
    """Loaded plugins with the hooks each implements, and every plugin that failed (with the reason)."""
    reg = get_registry()
    infos = []
    for name, plugin in reg.pm.list_name_plugin():
        info = _state.infos.get(name) or PluginInfo(name)
        info.hooks = sorted(h.name for h in reg.pm.get_hookcallers(plugin) or [])
        infos.append(info)
    infos.sort(key=lambda i: i.name)
    return infos, list(reg.failures)
