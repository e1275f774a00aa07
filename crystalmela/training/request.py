"""What a classifier plugin's ``train`` receives: data, features, where to write, and the card helper.

The core owns the data (a built reflection-list data set) and the parity between training and
prediction: features are computed by the same registered FeatureExtractor on the same kind of
Pattern (rendered on the classifier's grid) that ``predict`` gives it. The plugin owns the model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from crystalmela.simulation.augment import RENDER_VERSION, AugmentSettings, draw, render_augmented, row_seeds
from crystalmela.dataset.store import ReflectionSet, load_reflections, render_batch
from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.plugin_api.modelcard import ModelCard, library_versions, write_card
from crystalmela.plugin_api.pattern import PAPER_GRID, GridSpec, Pattern
from crystalmela.pipeline.preprocess import NONE as NO_PREPROCESS
from crystalmela.pipeline.preprocess import PreprocessSettings, preprocess
from crystalmela.simulation.profiles import ProfileSettings


@dataclass
class TrainRequest:
    """One training job: model ``name`` on data set ``dataset`` of the build in ``data``.

    ``splits`` replaces the build's train/val/test assignment (``crystalmela evaluate`` uses it for
    cross-validation folds): split name → row positions in the whole ``dataset`` view.

    ``augment`` renders training patterns under drawn lab conditions (``crystalmela.simulation.augment``);
    ``preprocess`` is the clean-up predict applies before features (recorded in the card, and what
    predict uses for this model unless told otherwise). ``max_train`` / ``max_val`` use a random
    subset of that many train / val rows (drawn from ``seed``; for features too slow for every row)."""

    name: str
    version: str
    feature: str
    dataset: str
    data: Path
    out_dir: Path
    grid: GridSpec = PAPER_GRID
    config: dict = field(default_factory=dict)
    seed: int = 0
    progress: bool = True
    profile: ProfileSettings = field(default_factory=ProfileSettings)
    splits: dict[str, np.ndarray] | None = None
    augment: AugmentSettings | None = None
    preprocess: PreprocessSettings = NO_PREPROCESS
    max_train: int | None = None
    max_val: int | None = None
    workers: int = 1            # processes computing uncached features (the cache is identical for any number)
    _all: ReflectionSet | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def of(cls, spec, dataset: str, data: str | Path, out_dir: str | Path, **settings) -> "TrainRequest":
        """The request to train classifier ``spec`` (a ClassifierSpec) on ``dataset`` of the build in
        ``data`` into ``out_dir``: its name, version, feature and grid taken from the spec, the
        other fields from ``settings``."""
        return cls(name=spec.name, version=spec.version, feature=spec.feature, dataset=dataset,
                   data=Path(data), out_dir=Path(out_dir), grid=spec.grid, **settings)

    def reflections(self, split: str | None) -> ReflectionSet:
        if self.splits is None or split is None:
            rset = load_reflections(self.data, self.dataset, split)
        elif split not in self.splits:
            raise CrystalmelaError(f"training request has no split {split!r} (has {', '.join(self.splits)})")
        else:
            if self._all is None:
                self._all = load_reflections(self.data, self.dataset, None)
            rset = self._all.subset(np.asarray(self.splits[split]))
        limit = {"train": self.max_train, "val": self.max_val}.get(split or "")
        if limit is not None and len(rset) > limit:
            keep = np.random.default_rng(self.seed).choice(len(rset), limit, replace=False)
            rset = rset.subset(np.sort(keep))
        return rset

    def render(self, rset: ReflectionSet, idx, *, augment: bool = True, seeds=None) -> np.ndarray:
        """Profiles of rows ``idx`` on this classifier's grid (float32, max = grid.normalize_max):
        under drawn lab conditions when the request augments (``augment=False``: plain), each row's
        conditions from ``seeds`` (default: its id and the request's seed, so a row renders the same in
        any batch and run)."""
        idx = np.asarray(idx)
        if self.augment is None or not augment:
            return render_batch(rset, idx, self.grid, self.profile)
        sub = rset.subset(idx)
        if seeds is None:
            seeds = row_seeds(sub.ids, self.seed)
        conditions = [draw(self.augment, np.random.default_rng(int(s))) for s in seeds]
        return render_augmented(sub.d, sub.intensity, sub.offsets, conditions, self.grid, hkl=sub.hkl,
                                hall=sub.hall, cell=sub.cell,
                                clean=lambda rows: render_batch(sub, rows, self.grid, self.profile))

    def inputs(self, rset: ReflectionSet, idx, *, augment: bool = True, seeds=None) -> np.ndarray:
        """What predict hands a feature extractor, for rows ``idx``: rendered, put on the grid by
        ``Pattern.to_grid`` and preprocessed, exactly as a measured file is (float32, max 1000)."""
        return np.stack([p.y.astype(np.float32) for p in
                         self.patterns(rset, idx, augment=augment, seeds=seeds)])

    def patterns(self, rset: ReflectionSet, idx, *, augment: bool = True, seeds=None) -> list[Pattern]:
        Y = self.render(rset, idx, augment=augment, seeds=seeds)
        return [to_input(y, self.grid, self.preprocess) for y in Y]

    def _cache_name(self, augment: bool) -> str:
        from crystalmela.plugins import get_registry
        import hashlib
        extractor = get_registry().feature(self.feature)
        name = f"{self.feature}-v{extractor.version}-{_grid_key(self.grid)}"
        if self.preprocess.active:
            name += "-pre" + hashlib.sha1(self.preprocess.model_dump_json().encode()).hexdigest()[:8]
        if augment and self.augment is not None:
            key = self.augment.model_dump_json() + f"seed={self.seed}render={RENDER_VERSION}"
            name += "-aug" + hashlib.sha1(key.encode()).hexdigest()[:8]
        return name

    def probe(self) -> np.ndarray | None:
        """The extractor's features of a fixed check pattern (``_probe_pattern``), stored with every
        feature cache written and compared on every read: a cache is found by the extractor's name and
        version only, so one written by other feature code under the same version (a one-off
        experiment, a change whose version was not bumped) would otherwise be trained on silently.
        Computed once a process per extractor version, grid and preprocessing; None (no check) for an
        extractor that cannot take the check pattern, which must not stop its training."""
        from crystalmela.plugins import get_registry
        extractor = get_registry().feature(self.feature)
        key = (self.feature, extractor.version, _grid_key(self.grid), self.preprocess.model_dump_json())
        if key not in _PROBES:
            try:
                _PROBES[key] = np.asarray(extractor.extract(_probe_pattern(self.grid, self.preprocess)), np.float32)
            except Exception:          # a third-party extractor's own limits: train without the check
                _PROBES[key] = None
        return _PROBES[key]

    def _cache(self, augment: bool = True) -> tuple[Path, dict[str, np.ndarray]]:
        cache = self.data / "features" / f"{self._cache_name(augment)}.npz"
        store: dict[str, np.ndarray] = {}
        if cache.exists():
            with np.load(cache, allow_pickle=False) as z:
                store = {k: z[k] for k in z.files}
        probe = self.probe() if "probe" in store else None    # caches before 2026-12-01 carry none
        if probe is not None and (store["probe"].shape != probe.shape or
                                  not np.allclose(store["probe"], probe, rtol=1e-4, atol=1e-4, equal_nan=True)):
            from crystalmela.plugins import get_registry
            raise CrystalmelaError(
                f"{cache}: this feature cache was written by other {self.feature} code than the installed "
                f"extractor (version {get_registry().feature(self.feature).version}): its check pattern's features differ. "
                "Delete the file to compute the features again, or give the changed extractor a new version")
        return cache, store

    def features(self, split: str | None, *, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) for a split: the registered feature extractor on rendered patterns (cached)."""
        from crystalmela.plugins import get_registry
        extractor = get_registry().feature(self.feature)
        rset = self.reflections(split)
        cache, store = self._cache(augment)
        known = dict(zip(store.get("ids", np.array([], dtype=str)).tolist(), range(len(store.get("ids", [])))))
        missing = np.array([i for i, ident in enumerate(rset.ids) if ident not in known], dtype=int)
        for start in range(0, len(missing), CACHE_EVERY):      # merged block by block: a killed run keeps
            block = missing[start:start + CACHE_EVERY]         # what it finished, and a rerun resumes
            new = extract_features(self, rset, block, extractor.extract, augment=augment,
                                   progress=self.progress,
                                   desc=f"{self.feature} features {start + len(block)}/{len(missing)}",
                                   workers=self.workers, split=split)
            store = _merge_into_cache(cache, rset.ids[block], new, probe=self.probe())
        if len(missing):
            known = dict(zip(store["ids"].tolist(), range(len(store["ids"]))))
        rows = np.array([known[i] for i in rset.ids.tolist()])
        return store["X"][rows], rset.labels

    def cached_features(self, ids, *, augment: bool = True) -> np.ndarray | None:
        """The cached features of the rows ``ids``, or None unless the cache holds them all (the
        caller then renders them itself)."""
        _, store = self._cache(augment)
        if not store:
            return None
        known = dict(zip(store["ids"].tolist(), range(len(store["ids"]))))
        ids = [str(i) for i in ids]
        if not all(i in known for i in ids):
            return None
        return store["X"][np.array([known[i] for i in ids], dtype=int)]

    def iter_features(self, split: str | None, batch: int = 1024, *, augment: bool = True):
        """Yield (X, y) batches of a split: from the feature cache when it holds every row, else
        rendered now and not cached (whole-profile features of a large set would be gigabytes)."""
        from crystalmela.plugins import get_registry
        rset = self.reflections(split)
        cached = self.cached_features(rset.ids, augment=augment)
        if cached is not None:
            for start in range(0, len(cached), batch):
                yield cached[start:start + batch], rset.labels[start:start + batch]
            return
        extract = get_registry().feature(self.feature).extract
        for start in range(0, len(rset), batch):
            idx = np.arange(start, min(start + batch, len(rset)))
            yield (extract_features(self, rset, idx, extract, augment=augment, progress=False),
                   rset.labels[idx])

    def data_summary(self) -> dict:
        manifest = json.loads((self.data / "dataset.json").read_text())
        return {"path": str(self.data), "sha256": manifest.get("sha256"),
                "format": manifest.get("format"), "build_settings": manifest.get("settings"),
                "counts": manifest["counts"].get(self.dataset), "max_train": self.max_train,
                "max_val": self.max_val}

    def write_card(self, weights: str, *, settings: dict, metrics: dict, libraries: tuple[str, ...] = ()
                   ) -> ModelCard:
        from crystalmela.plugins import get_registry
        return write_card(self.out_dir, weights=weights, model=self.name, model_version=self.version,
                          dataset=self.dataset, feature=self.feature,
                          feature_version=get_registry().feature(self.feature).version, data=self.data_summary(),
                          settings={**settings, "seed": self.seed, "grid": self.grid.model_dump(),
                                    "profile": self.profile.model_dump(),
                                    "augment": None if self.augment is None else self.augment.model_dump(),
                                    "preprocess": self.preprocess.model_dump()},
                          metrics=metrics, libraries=library_versions(*libraries),
                          code_version=_code_version())


def _merge_into_cache(cache: Path, ids: np.ndarray, X: np.ndarray, probe: np.ndarray | None = None
                      ) -> dict[str, np.ndarray]:
    """Add rows to a feature cache file and return its whole content (with ``probe``, the writer's
    features of the check pattern, ``TrainRequest.probe``; else the file's own is kept).

    Several ``train`` runs on one data set (full, organic and inorganic at once) share a cache; each
    re-reads the file under an exclusive lock and adds its rows, so none overwrites another's, and
    each writes its own temporary file (one shared name let two writers corrupt it)."""
    import os
    cache.parent.mkdir(exist_ok=True)
    with open(cache.with_suffix(".lock"), "w") as lock:
        try:
            import fcntl
            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX: no lock, still a private temp file
            pass
        old: dict[str, np.ndarray] = {}
        if cache.exists():
            with np.load(cache, allow_pickle=False) as z:
                old = {k: z[k] for k in z.files}
        ids = np.asarray(ids).astype(str)
        if old:
            fresh = ~np.isin(ids, old["ids"])
            ids, X = np.concatenate([old["ids"], ids[fresh]]), np.concatenate([old["X"], X[fresh]])
        if probe is None and "probe" in old:
            probe = old["probe"]
        extra = {} if probe is None else {"probe": np.asarray(probe, np.float32)}
        tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, ids=ids, X=X, **extra)
        tmp.replace(cache)
    return {"ids": ids, "X": X, **extra}


_PROBES: dict[tuple, np.ndarray] = {}


def _probe_pattern(grid: GridSpec, settings: PreprocessSettings) -> Pattern:
    """A fixed check pattern on ``grid``: the first 40 lines of a triclinic cell (a general one, so
    every lattice family's search of an indexing extractor runs on it) with fixed, uneven heights,
    as 0.1° Gaussian peaks on a flat background, fed as training feeds a rendering (``to_input``).
    Any feature extractor gives numbers for it; what matters is that the same code gives the same."""
    from itertools import product
    from crystalmela.simulation.augment import reciprocal_metric
    G = reciprocal_metric(np.array([7.1, 8.3, 9.7, 81.0, 76.0, 68.0]))
    hkl = np.array([v for v in product(range(-4, 5), repeat=3) if v > (0, 0, 0)], float)
    s = np.sqrt(np.sort(np.einsum("ni,ij,nj->n", hkl, G, hkl))) * grid.wavelength / 2.0
    two_theta = 2.0 * np.degrees(np.arcsin(s[s < np.sin(np.radians(grid.two_theta_max / 2.0))]))[:40]
    i = np.arange(two_theta.size)
    height = 1000.0 * np.exp(-0.03 * i) * (0.2 + 0.8 * ((i * 0.618034) % 1.0))
    x = grid.two_theta
    y = 20.0 + sum(h * np.exp(-4.0 * np.log(2.0) * ((x - t) / 0.1) ** 2) for t, h in zip(two_theta, height))
    return to_input(np.asarray(y, np.float32), grid, settings)


def _grid_key(grid: GridSpec) -> str:
    import hashlib
    return hashlib.sha1(grid.model_dump_json().encode()).hexdigest()[:8]


def _code_version() -> str:
    """Package version plus the git commit when run from a checkout (what produced the model)."""
    import subprocess
    from crystalmela.dataset.build import _version
    v = _version()
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{v}+g{sha}" if sha else v


def to_input(y: np.ndarray, grid: GridSpec, settings: PreprocessSettings = NO_PREPROCESS) -> Pattern:
    """A rendered profile as predict would see it: ``Pattern.to_grid`` (which averages each grid step),
    then the preprocessing."""
    p = Pattern(grid.two_theta, y, wavelength=grid.wavelength, reader="simulated").to_grid(grid)
    return preprocess(p, settings)


EXTRACT_BATCH = 512
CACHE_EVERY = 16384     # uncached rows computed between two writes of the feature cache
_WORKER_SETS: dict = {}


def _extract_chunk(task, request: TrainRequest, split, augment: bool, batch: int):
    """A process-pool task: features of one chunk of a split's rows (the split is loaded once per
    worker process, not shipped with every task)."""
    from crystalmela.plugins import get_registry
    _, rows = task
    key = (request.data, request.dataset, split, request.seed, request.max_train, request.max_val)
    if key not in _WORKER_SETS:
        _WORKER_SETS.clear()
        _WORKER_SETS[key] = request.reflections(split)
    extract = get_registry().feature(request.feature).extract
    return _extract_serial(request, _WORKER_SETS[key], rows, extract, augment, batch, None)


def _extract_serial(request, rset, rows, extract, augment, batch, bar) -> list[np.ndarray]:
    out = []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        for p in request.patterns(rset, chunk, augment=augment):
            out.append(np.asarray(extract(p), dtype=np.float32))
        if bar is not None:
            bar.update(len(chunk))
    return out


def extract_features(request: TrainRequest, rset: ReflectionSet, rows, extract, *, augment: bool = True,
                     progress: bool = True, desc: str = "features", workers: int = 1,
                     split: str | None = None, batch: int | None = None) -> np.ndarray:
    """Render rows in batches of ``batch`` (default ``EXTRACT_BATCH``) and apply ``extract`` to each
    as predict would (``TrainRequest.patterns``).

    ``workers`` > 1 (with ``split``, the split ``rset`` is of ``request``) computes chunks of whole
    batches in that many processes, each loading the split itself and looking ``extract`` up in its
    own plugin registry. A row renders the same in any batch, so the features equal the serial run's."""
    from tqdm import tqdm
    rows = np.asarray(rows)
    batch = batch or EXTRACT_BATCH
    with tqdm(total=len(rows), disable=not progress, desc=desc, unit="pattern") as bar:
        if workers <= 1 or len(rows) <= batch:
            out = _extract_serial(request, rset, rows, extract, augment, batch, bar)
        else:
            from crystalmela.parallel import map_unordered
            step = batch * max(1, min(8, len(rows) // (batch * 4 * workers)))
            tasks = [(start, rows[start:start + step]) for start in range(0, len(rows), step)]
            parts = {}
            light = replace(request)             # without the loaded ``_all`` set
            for (start, chunk), X in map_unordered(_extract_chunk, tasks, light, split, augment, batch,
                                                   workers=workers):
                parts[start] = X
                bar.update(len(chunk))
            out = [x for start in sorted(parts) for x in parts[start]]
    if not out:
        raise CrystalmelaError("no patterns to extract features from")
    return np.stack(out)
