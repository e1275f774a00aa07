"""Results: per-model and ensemble probabilities for one pattern, JSON-ready, with provenance."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

Probabilities = dict[str, float]


def as_probabilities(values) -> Probabilities:
    """Seven values in canonical order → ``{system: probability}``."""
    return {s: float(v) for s, v in zip(CRYSTAL_SYSTEMS, values)}


def top_two(probs: Probabilities) -> tuple[str | None, str | None]:
    ranked = sorted(CRYSTAL_SYSTEMS, key=lambda s: (-probs.get(s, 0.0), CRYSTAL_SYSTEMS.index(s)))
    return (ranked[0], ranked[1]) if probs else (None, None)


class Prediction(BaseModel):
    """What ``crystalmela.pipeline.predictor`` returns for one pattern.

    ``to_json()`` gives exactly the documented machine-readable shape; the extra fields (reader,
    wavelength used, preprocessing notes, model versions) are provenance for people and the web page.
    """

    path: str
    dataset: str
    per_model: dict[str, Probabilities] = Field(default_factory=dict)
    ensemble: Probabilities = Field(default_factory=dict)
    top1: str | None = None
    top2: str | None = None
    errors: dict[str, str] = Field(default_factory=dict)
    reader: str | None = None
    wavelength: float | None = None
    wavelength_source: str | None = Field(None, description="given, file, or assumed (the models' grid)")
    notes: list[str] = Field(default_factory=list)
    model_versions: dict[str, str] = Field(default_factory=dict)
    preprocessing: dict[str, str] = Field(default_factory=dict, description="per model: what ran")
    temperatures: dict[str, float] = Field(default_factory=dict, description="calibration applied")
    unsure: bool = Field(False, description="read top-2 too: the ensemble's top-1 is below unsure_below, "
                                            "or the data-quality gate doubts the data (unsure_reasons)")
    unsure_reasons: list[str] = Field(default_factory=list)
    quality: dict[str, Any] | None = Field(None, description="what the data-quality gate measured")
    evidence: dict[str, list[str]] = Field(default_factory=dict,
                                           description="per model: what its features found (FeatureExtractor.explain)")
    evidence_data: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per model: the same findings as data (Evidence.data), e.g. lattice_fit's cells")
    unsure_below: float = 0.5

    @property
    def ok(self) -> bool:
        return bool(self.ensemble)

    def to_json(self) -> dict:
        return {"path": self.path, "dataset": self.dataset, "per_model": self.per_model,
                "ensemble": self.ensemble, "top1": self.top1, "top2": self.top2, "errors": self.errors,
                "unsure": self.unsure, "unsure_reasons": self.unsure_reasons, "notes": self.notes,
                "reader": self.reader, "wavelength": self.wavelength, "wavelength_source": self.wavelength_source,
                "quality": self.quality, "preprocessing": self.preprocessing, "temperatures": self.temperatures,
                "evidence": self.evidence, "evidence_data": self.evidence_data}


def format_table(pred: Prediction) -> str:
    """A fixed-width table: one row per model, then the ensemble, then top-1 / top-2 and any errors."""
    heads = [s[:5] for s in CRYSTAL_SYSTEMS]
    rows = [(name, probs) for name, probs in pred.per_model.items()]
    if pred.ensemble:
        rows.append(("ensemble", pred.ensemble))
    width = max([len("model")] + [len(r[0]) for r in rows])
    lines = [f"{pred.path}  (reader: {pred.reader or '?'}, data set: {pred.dataset}"
             + (f", λ = {pred.wavelength:g} Å {pred.wavelength_source or ''}".rstrip() if pred.wavelength else "")
             + ")"]
    lines.append(f"  {'model':<{width}}  " + "  ".join(f"{h:>6}" for h in heads))
    for name, probs in rows:
        if name == "ensemble":
            lines.append("  " + "-" * (width + 2 + 8 * len(heads) - 2))
        lines.append(f"  {name:<{width}}  " + "  ".join(f"{probs.get(s, 0.0):6.3f}" for s in CRYSTAL_SYSTEMS))
    if pred.top1:
        lines.append(f"  top-1: {pred.top1} ({pred.ensemble[pred.top1]:.3f})   "
                     f"top-2: {pred.top2} ({pred.ensemble[pred.top2]:.3f})")
        if pred.unsure:
            lines.append(f"  UNSURE: read it as {pred.top1} or {pred.top2}: " + "; ".join(pred.unsure_reasons))
    else:
        lines.append("  no model produced a prediction")
    shown: dict[tuple, str] = {}
    for name, said in pred.evidence.items():
        if tuple(said) in shown:              # models fed the same features found the same
            lines.append(f"  {name}: as {shown[tuple(said)]}")
            continue
        shown[tuple(said)] = name
        lines.append(f"  {name}: {said[0]}")
        lines.extend(f"    {line}" for line in said[1:])
    for name, msg in pred.errors.items():
        lines.append(f"  error [{name}]: {msg}")
    if pred.temperatures:
        lines.append("  calibrated (temperature): " + ", ".join(f"{n} {t:.2f}" for n, t in pred.temperatures.items()))
    for name, d in pred.preprocessing.items():
        if d != "none":
            lines.append(f"  preprocessing [{name}]: {d}")
    for note in pred.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
