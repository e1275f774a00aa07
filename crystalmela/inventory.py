"""The installed models as their cards describe them: what each was trained on, how it scored on its
val split, its temperature, and the ensemble weights fitted for it. ``crystalmela models`` prints
this, so a user can say which models gave an answer without opening twelve JSON files.

Each model is loaded the way ``predict`` loads it (``Registry.model``: the plugin's own ``load``,
which for the shipped models checks the weights' sha256 and classes against the card, then the
core's feature-version check), so a model listed as loaded is one ``predict`` can use, and one that
cannot be loaded is listed with the reason instead. Models of third-party plugins are listed the
same way; one without a ``card`` says so.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from crystalmela.pipeline.ensemble import ensemble_fit
from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.plugins import Registry, get_registry
from crystalmela.plugin_api.systems import DATASETS


class Scores(BaseModel):
    """One of a card's ``metrics`` blocks: accuracy on ``n`` val patterns."""
    n: int | None = None
    top1: float | None = None
    top2: float | None = None
    balanced: float | None = None


class ModelInfo(BaseModel):
    """One classifier's model for one data set."""
    model: str
    dataset: str
    plugin: str
    version: str                      # the plugin's model-code version
    loaded: bool
    problem: str | None = None        # why it cannot be loaded, or that it has no card
    weights: str | None = None        # file name, beside the card
    sha256: str | None = None
    size_bytes: int | None = None
    feature: str | None = None
    feature_version: str | None = None
    trained_on: str | None = None     # the data set build, in words
    data_sha256: str | None = None
    train_rows: int | None = None
    val: Scores | None = None         # rendered as in training (lab-condition augmented)
    val_clean: Scores | None = None
    temperature: float | None = None
    code_version: str | None = None
    created: str | None = None
    ensemble_weight: float | None = None


class EnsembleInfo(BaseModel):
    """The combination ``predict`` uses for a data set's models that load."""
    dataset: str
    models: list[str]
    weights: dict[str, float] | None = None   # None: equal weights (no fit for exactly these models)
    temperature: float = 1.0
    fitted_on: str | None = None
    val_top1: float | None = None
    record: str | None = None                 # the fit's file


class Inventory(BaseModel):
    models: list[ModelInfo]
    ensembles: list[EnsembleInfo]


def _number(value) -> float | None:
    """A card's figure, or None when it is missing or not a number: cards are JSON any plugin writes,
    and one odd field must not stop the listing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _count(value) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _scores(block) -> Scores | None:
    if not isinstance(block, dict):
        return None
    return Scores(n=_count(block.get("n")), top1=_number(block.get("accuracy")),
                  top2=_number(block.get("top2_accuracy")), balanced=_number(block.get("balanced_accuracy")))


def describe_build(data) -> str | None:
    """A card's ``data`` block in words: the build's folder name, how many synthetic crystals and CIF
    folders, its seed and the generator settings that change what is drawn."""
    if not isinstance(data, dict) or not data:
        return None
    name = Path(str(data.get("path", "?"))).name or "?"
    build = data.get("build_settings")
    if not isinstance(build, dict) or not build:
        return name
    parts = []
    if _count(build.get("synthetic")):
        parts.append(f"{build['synthetic']:,} synthetic crystals")
    if isinstance(build.get("cif_dirs"), list) and build["cif_dirs"]:
        parts.append(f"{len(build['cif_dirs'])} CIF folder(s)")
    if "seed" in build:
        parts.append(f"seed {build['seed']}")
    # cards written before an option existed lack its key: the generator then did what the old
    # default did (docs/models.md, "Training data")
    parts.append("space groups " + ("drawn exactly" if build.get("sg_draw", "redraw") == "exact" else "redrawn"))
    parts.append(f"cells {build.get('cell_model', 'uniform')}")
    return f"{name} ({', '.join(parts)})"


def _from_card(info: ModelInfo, card) -> None:
    info.weights, info.sha256, info.size_bytes = card.weights, card.sha256, card.size_bytes
    info.feature, info.feature_version = card.feature, card.feature_version or None
    info.trained_on = describe_build(card.data)
    sha = card.data.get("sha256")
    info.data_sha256 = sha if isinstance(sha, str) else None
    info.train_rows = _count(card.metrics.get("train_size"))
    info.val, info.val_clean = _scores(card.metrics.get("val")), _scores(card.metrics.get("val_clean"))
    info.temperature = _number((card.calibration or {}).get("temperature"))
    info.code_version, info.created = card.code_version or None, card.created or None


def inventory(datasets=DATASETS, registry: Registry | None = None) -> Inventory:
    """Every installed classifier's model for each of ``datasets``, and each data set's ensemble."""
    registry = registry or get_registry()
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        raise CrystalmelaError(f"unknown data set {unknown[0]!r}; expected one of {', '.join(DATASETS)}")
    rows, ensembles = [], []
    for dataset in datasets:
        loaded = {}
        for name in sorted(registry.classifiers):
            spec = registry.classifier(name)
            if dataset not in spec.datasets:
                continue
            info = ModelInfo(model=name, dataset=dataset, plugin=registry.provider.get(("classifier", name), "?"),
                             version=spec.version, loaded=False)
            try:
                model = registry.model(name, dataset)
            except CrystalmelaError as exc:
                info.problem = str(exc)
            except Exception as exc:  # a plugin's bug: listed, the others still are
                info.problem = f"failed: {type(exc).__name__}: {exc}"
            else:
                info.loaded = True
                loaded[name] = model
                card = model.card
                if card is None:
                    info.problem = "no model card: what it was trained on is not recorded"
                else:
                    _from_card(info, card)
            rows.append(info)
        if not loaded:
            continue
        fit = ensemble_fit(loaded, dataset, registry=registry)
        ens = EnsembleInfo(dataset=dataset, models=sorted(loaded))
        if fit is not None:
            ens.weights, ens.temperature, ens.record = fit.weights, fit.temperature, str(fit.path)
            fitted_on = fit.record.get("fitted_on")
            ens.fitted_on = fitted_on if isinstance(fitted_on, str) else None
            ens.val_top1 = _number(fit.record.get("accuracy"))
            for info in rows:
                if info.dataset == dataset and fit.weights and info.model in fit.weights:
                    info.ensemble_weight = fit.weights[info.model]
        ensembles.append(ens)
    return Inventory(models=rows, ensembles=ensembles)


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def _score_text(s: Scores | None) -> str:
    """"0.686 / 0.855 (balanced 0.603, n 2,001)"."""
    if s is None or s.top1 is None:
        return "not recorded"
    text = f"{s.top1:.3f} / {s.top2:.3f}" if s.top2 is not None else f"{s.top1:.3f}"
    extra = [f"balanced {s.balanced:.3f}" if s.balanced is not None else "", f"n {s.n:,}" if s.n else ""]
    extra = [e for e in extra if e]
    return text + (f" ({', '.join(extra)})" if extra else "")


def format_inventory(inv: Inventory) -> str:
    """The text ``crystalmela models`` prints: per data set, its ensemble, then each model."""
    out = []
    for dataset in dict.fromkeys(m.dataset for m in inv.models):
        if out:
            out.append("")
        ens = next((e for e in inv.ensembles if e.dataset == dataset), None)
        out.append(f"data set {dataset}")
        if ens is None:
            out.append("  ensemble: no model loads")
        elif ens.weights is None:
            out.append(f"  ensemble: {', '.join(ens.models)}, equal weights (no fit for exactly these models)")
        else:
            weights = ", ".join(f"{n} {w:.2f}" for n, w in sorted(ens.weights.items()))
            top1 = f", val top-1 {ens.val_top1:.3f}" if ens.val_top1 is not None else ""
            out.append(f"  ensemble: weights {weights}; temperature {ens.temperature:.3f}{top1}")
            if ens.fitted_on:
                out.append(f"    fitted on {ens.fitted_on}")
        for m in (m for m in inv.models if m.dataset == dataset):
            head = f"  {m.model} {m.version}  [{m.plugin}]"
            if not m.loaded:
                out.append(f"{head}  NOT AVAILABLE: {m.problem}")
                continue
            if m.problem:
                out.append(f"{head}  {m.problem}")
                continue
            feature = f"{m.feature} v{m.feature_version}" if m.feature_version else m.feature
            temperature = f", temperature {m.temperature:.3f}" if m.temperature is not None else ""
            out.append(f"{head}  {m.weights} {_size(m.size_bytes)} (sha256 {(m.sha256 or '?')[:12]}…), "
                       f"features {feature}{temperature}")
            rows = f"{m.train_rows:,} training rows of " if m.train_rows else ""
            out.append(f"    trained on {rows}{m.trained_on or 'an unrecorded data set'}")
            out.append(f"    val top-1 / top-2, rendered as in training: {_score_text(m.val)}; "
                       f"clean: {_score_text(m.val_clean)}")
            made = ", ".join(x for x in (f"code {m.code_version}" if m.code_version else "", m.created or "") if x)
            if made:
                out.append(f"    made by {made}")
    return "\n".join(out)
