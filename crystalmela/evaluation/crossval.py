"""Stratified k-fold cross-validation of classifier plugins on a built data set (paper §5, Table 1).

Every fold trains the plugin through its public ``train`` (the same door as ``crystalmela train``)
on the other folds, with a stratified tenth of them held out as the validation split that networks
stop early on, loads the result with the plugin's ``load_dir`` and scores the fold it never saw.
Dummy baselines are scored on the same folds. Folds run in parallel processes or on Dask.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.evaluation.metrics import classification_metrics, mean_std, reliability
from crystalmela.pipeline.ensemble import combine_rows
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

BASELINES = ("most_frequent", "stratified", "uniform")


@dataclass
class FoldJob:
    model: str
    data: str
    dataset: str
    fold: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    config: dict = field(default_factory=dict)
    seed: int = 0
    workdir: str = ""


def baseline_probabilities(strategy: str, y_train: np.ndarray, n: int, rng: np.random.Generator
                           ) -> np.ndarray:
    """Scores whose ranking is the dummy strategy's guess.

    most_frequent: the training class shares (scikit-learn's ``prior`` strategy: its top-1 is the
    most frequent class, its top-2 the two most frequent). stratified / uniform: scikit-learn's
    DummyClassifier returns one-hot probabilities, which cannot rank a second guess, so these are
    Gumbel-max draws: the top-1 is a class drawn from the shares (or uniformly), as DummyClassifier
    draws it, and the top-2 a second class drawn without replacement.
    """
    prior = np.bincount(y_train, minlength=len(CRYSTAL_SYSTEMS)) / max(len(y_train), 1)
    if strategy == "most_frequent":
        return np.tile(prior, (n, 1))
    if strategy == "stratified":
        logits = np.log(np.maximum(prior, 1e-300))
    elif strategy == "uniform":
        logits = np.zeros(len(CRYSTAL_SYSTEMS))
    else:
        raise CrystalmelaError(f"unknown baseline {strategy!r}; expected one of {', '.join(BASELINES)}")
    z = logits + rng.gumbel(size=(n, len(CRYSTAL_SYSTEMS)))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fold_rows(labels: np.ndarray, folds: int, seed: int, limit: int | None = None):
    """(train, val, test) row positions per fold: stratified folds, and a stratified 10 % of each
    training part as validation. ``limit`` first draws a stratified subsample of that many rows."""
    from sklearn.model_selection import StratifiedKFold, train_test_split
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    counts = np.bincount(labels, minlength=len(CRYSTAL_SYSTEMS))
    if folds < 2:
        raise CrystalmelaError("--folds must be at least 2")
    strata = _strata(labels)
    if limit is not None and strata is not None and limit < int((counts > 0).sum()):
        raise CrystalmelaError(f"--limit {limit}: a stratified sample needs at least one pattern of each of "
                               f"the {int((counts > 0).sum())} classes present")
    if limit is not None and limit < len(rows):
        rows, _ = train_test_split(rows, train_size=limit, stratify=strata, random_state=seed)
        rows = np.sort(rows)
        counts = np.bincount(labels[rows], minlength=len(CRYSTAL_SYSTEMS))
    present = counts[counts > 0]
    if present.size == 0 or present.min() < folds:
        small = [f"{c} ({n})" for c, n in zip(CRYSTAL_SYSTEMS, counts) if 0 < n < folds]
        raise CrystalmelaError(f"{folds}-fold CV needs at least {folds} patterns of every class present; "
                               f"too few: {', '.join(small)}")
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    out = []
    for train_pos, test_pos in skf.split(rows, labels[rows]):
        tr = rows[train_pos]
        strata = _strata(labels[tr])
        n_val = int(np.ceil(0.1 * len(tr)))
        if strata is not None:   # a stratified split puts every class on both sides; strata means each
            n_val = max(n_val, len(np.unique(strata)))      # class has 2+ here, so the training side keeps one
        tr, va = train_test_split(tr, test_size=n_val, stratify=strata, random_state=seed)
        out.append((np.sort(tr), np.sort(va), rows[test_pos]))
    return out


def _strata(labels: np.ndarray) -> np.ndarray | None:
    """Stratify when every class has two members (train_test_split's requirement), else don't."""
    counts = np.bincount(labels)
    return labels if counts[counts > 0].min() >= 2 else None


def run_fold(job: FoldJob) -> dict:
    """Train on the job's train/val rows, score its test rows. Runs in a worker process."""
    from crystalmela.plugins import get_registry
    from crystalmela.training.request import TrainRequest
    spec = get_registry().classifier(job.model)
    if spec.train is None or spec.load_dir is None:
        raise CrystalmelaError(f"classifier {job.model} cannot be cross-validated: its plugin gives no "
                               "`train` and `load_dir` (see docs/plugins.md)")
    with tempfile.TemporaryDirectory(dir=job.workdir or None, prefix=f"{job.model}-fold{job.fold}-") as tmp:
        req = TrainRequest.of(spec, job.dataset, job.data, tmp, config=dict(job.config),
                              seed=job.seed + job.fold, progress=False,
                              splits={"train": job.train, "val": job.val, "test": job.test})
        spec.train(req)
        model = spec.load_dir(Path(tmp))
        probs, labels = [], []
        for X, y in req.iter_features("test"):
            probs.append(np.asarray(model.predict_proba(X), dtype=float))
            labels.append(y)
    proba, y = np.concatenate(probs), np.concatenate(labels)
    return {"fold": job.fold, "proba": proba, "y": y,
            "metrics": classification_metrics(y, proba, per_class=True)}


def cross_validate(models: list[str], data: str | Path, dataset: str = "full", *, folds: int = 10,
                   seed: int = 0, limit: int | None = None, configs: dict[str, dict] | None = None,
                   weights: dict[str, float] | None = None, workers: int | None = 1,
                   scheduler: str | None = None, progress: bool = True) -> dict:
    """k-fold CV of each model, their ensemble and the dummy baselines, on one data set of a build.

    Returns ``{"ensemble": metrics, "per_model": {name: metrics}, "baselines": {name: metrics},
    "reliability", "n", "classes", ...}`` where metrics are fold means with ``*_std`` beside them,
    the summed confusion matrix and ``per_fold``."""
    from tqdm import tqdm

    from crystalmela.dataset.store import load_reflections
    from crystalmela.parallel import map_unordered
    from crystalmela.plugins import get_registry
    from crystalmela.training.request import TrainRequest

    data = Path(data)
    labels = load_reflections(data, dataset, None).labels
    registry = get_registry()
    for name in models:
        registry.classifier(name)             # an unknown name fails before anything else
    splits = fold_rows(labels, folds, seed, limit)
    for name in models:                       # fail before any training on a wrong name
        spec = registry.classifier(name)
        if spec.train is None or spec.load_dir is None:
            raise CrystalmelaError(f"classifier {name} cannot be cross-validated: its plugin gives no "
                                   "`train` and `load_dir`")
        # small features are computed once for every row, so parallel folds only read the cache
        req = TrainRequest.of(spec, dataset, data, data, progress=progress,
                              splits={"all": np.sort(np.concatenate(splits[0]))})
        probe, _ = next(req.iter_features("all", batch=1))
        if probe[0].size <= 1024:         # e.g. 12 peak positions, not a 4,501-point profile
            req.features("all")

    jobs = [FoldJob(m, str(data), dataset, k, tr, va, te, dict((configs or {}).get(m, {})), seed)
            for m in models for k, (tr, va, te) in enumerate(splits)]
    proba: dict[str, dict[int, np.ndarray]] = {m: {} for m in models}
    with tqdm(total=len(jobs), desc=f"{folds}-fold CV", unit="fold", disable=not progress) as bar:
        for job, result in map_unordered(run_fold, jobs, workers=workers, scheduler=scheduler):
            if not np.array_equal(result["y"], labels[job.test]):
                raise CrystalmelaError(f"{job.model} fold {job.fold}: test rows came back in another order")
            proba[job.model][job.fold] = result["proba"]
            bar.update()

    def summary(per_fold: list[np.ndarray]) -> dict:
        fold_metrics = [classification_metrics(labels[te], p, per_class=True) | {"fold": k}
                        for k, ((_, _, te), p) in enumerate(zip(splits, per_fold))]
        return mean_std(fold_metrics) | {"per_fold": fold_metrics}

    y_all = labels[np.concatenate([te for _, _, te in splits])]
    ens = [combine_rows({m: proba[m][k] for m in models}, dataset, weights=weights)
           for k in range(len(splits))]
    rng = np.random.default_rng(seed)
    base: dict[str, list[np.ndarray]] = {b: [] for b in BASELINES}
    for tr, va, te in splits:
        y_train = labels[np.concatenate([tr, va])]
        for b in BASELINES:
            base[b].append(baseline_probabilities(b, y_train, len(te), rng))
    return {"mode": "cross-validation", "dataset": dataset, "folds": folds, "seed": seed,
            "n": int(len(y_all)), "classes": list(CRYSTAL_SYSTEMS), "data": str(data),
            "per_class_counts": np.bincount(y_all, minlength=len(CRYSTAL_SYSTEMS)).tolist(),
            "ensemble": summary(ens), "per_model": {m: summary([proba[m][k] for k in range(len(splits))])
                                                    for m in models},
            "baselines": {b: summary(v) for b, v in base.items()},
            "reliability": reliability(y_all, np.concatenate(ens))}
