"""Score the installed models on a folder of labelled pattern files (paper §7, Table 6).

``labels.csv`` has a header with the columns ``file`` and ``crystal_system``; ``file`` is relative to
the folder. Any supported format is read through the reader plugins, exactly as ``predict`` does.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.evaluation.metrics import classification_metrics, reliability
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

ALIASES = {s[:4]: s for s in CRYSTAL_SYSTEMS} | {"rhombohedral": "trigonal"}   # "mono", "orth", ...


class LabelsError(CrystalmelaError):
    """A labels file that cannot be used; the message names the file and line."""


def read_labels(path: str | Path, root: str | Path) -> list[tuple[Path, int]]:
    """(pattern path, class index) for every row; every problem is reported with its line."""
    path, root = Path(path), Path(root)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelsError(f"{path}: labels file not found") from None
    except UnicodeDecodeError as exc:
        raise LabelsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise LabelsError(f"{path}: empty; expected a header `file,crystal_system` and one row per pattern")
    header = [h.strip().lower() for h in rows[0]]
    if "file" not in header or "crystal_system" not in header:
        raise LabelsError(f"{path}, line 1: header {rows[0]} lacks the columns `file` and `crystal_system`")
    fi, ci = header.index("file"), header.index("crystal_system")
    out, problems, seen = [], [], {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(fi, ci):
            problems.append(f"line {lineno}: expected {len(header)} columns, got {len(row)}")
            continue
        name, label = row[fi].strip(), row[ci].strip().lower()
        system = label if label in CRYSTAL_SYSTEMS else ALIASES.get(label)
        if system is None:
            problems.append(f"line {lineno}: crystal system {row[ci].strip()!r} is not one of "
                            f"{', '.join(CRYSTAL_SYSTEMS)}")
            continue
        file = (root / name)
        if not name or Path(name).is_absolute() or ".." in Path(name).parts:
            problems.append(f"line {lineno}: file {name!r} must be a path inside {root}")
            continue
        if not file.is_file():
            problems.append(f"line {lineno}: {file} does not exist")
            continue
        if name in seen:
            problems.append(f"line {lineno}: {name} already listed on line {seen[name]}")
            continue
        seen[name] = lineno
        out.append((file, CRYSTAL_SYSTEMS.index(system)))
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise LabelsError(f"{path}: {len(problems)} bad row(s):\n  " + "\n  ".join(shown))
    if not out:
        raise LabelsError(f"{path}: no labelled patterns")
    return out


def evaluate_patterns(root: str | Path, labels: str | Path, models: list[str] | None = None,
                      dataset: str = "full", *, weights: dict[str, float] | None = None,
                      wavelength: float | None = None, reader: str | None = None,
                      progress: bool = True, preprocess=None, calibrate: bool = True) -> dict:
    """Per-model and ensemble metrics over the labelled files. Files that cannot be read or
    predicted are listed under ``failed`` (with the reason) and left out of the metrics.
    ``preprocess`` and ``calibrate`` are passed to the ``Predictor`` (default: as predict does)."""
    from tqdm import tqdm

    from crystalmela.pipeline.predictor import Predictor

    predictor = Predictor(models, dataset, weights=weights, preprocess=preprocess, calibrate=calibrate)
    items = read_labels(labels, root)
    scored = score(predictor, ((str(p.relative_to(root)), label, p) for p, label in
                               tqdm(items, desc="patterns", unit="file", disable=not progress)),
                   reader=reader, wavelength=wavelength)
    return {"mode": "patterns", "data": str(root), "labels": str(labels), **scored}


def score(predictor, items, *, reader: str | None = None, wavelength: float | None = None) -> dict:
    """Metrics of ``predictor``'s models and ensemble over ``items``: (name, label index, path or
    Pattern). Items that cannot be read or predicted are listed under ``failed`` and left out."""
    from crystalmela.plugin_api.pattern import Pattern
    names = predictor.models
    y, failed, seen = [], [], 0
    probs: dict[str, list] = {m: [] for m in [*names, "ensemble"]}
    for name, label, item in items:
        seen += 1
        try:
            pred = (predictor.predict_pattern(item, wavelength) if isinstance(item, Pattern)
                    else predictor.predict_path(item, reader=reader, wavelength=wavelength))
        except CrystalmelaError as exc:
            failed.append({"file": name, "error": str(exc)})
            continue
        if pred.errors or not pred.ensemble:
            failed.append({"file": name, "error": "; ".join(f"{k}: {v}" for k, v in pred.errors.items())})
            continue
        y.append(label)
        for m in names:
            probs[m].append([pred.per_model[m][c] for c in CRYSTAL_SYSTEMS])
        probs["ensemble"].append([pred.ensemble[c] for c in CRYSTAL_SYSTEMS])
    if not y:
        first = f"; first failure: {failed[0]['file']}: {failed[0]['error']}" if failed else ""
        raise CrystalmelaError(f"none of the {seen} labelled patterns could be predicted{first}")
    y_arr = np.array(y)
    ens = np.array(probs.pop("ensemble"))
    return {"dataset": predictor.dataset, "n": int(len(y_arr)), "classes": list(CRYSTAL_SYSTEMS),
            "per_class_counts": np.bincount(y_arr, minlength=len(CRYSTAL_SYSTEMS)).tolist(),
            "ensemble": classification_metrics(y_arr, ens, per_class=True),
            "per_model": {m: classification_metrics(y_arr, np.array(p), per_class=True) for m, p in probs.items()},
            "baselines": _baselines(y_arr),
            "reliability": reliability(y_arr, ens), "failed": failed}


def _baselines(y: np.ndarray) -> dict:
    """The paper's Table 6 dummy row: most-frequent, stratified and uniform guesses. There is no
    training set here, so the class shares are the evaluated labels' own (an optimistic baseline,
    as in the paper)."""
    from crystalmela.evaluation.crossval import BASELINES, baseline_probabilities
    rng = np.random.default_rng(0)
    return {b: classification_metrics(y, baseline_probabilities(b, y, len(y), rng), per_class=True)
            for b in BASELINES}
