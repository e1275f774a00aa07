"""What a classifier plugin's ``train`` receives: data, features, where to write, and the card helper.

The core owns the data (a built reflection-list data set) and the parity between training and
prediction: features are computed by the same registered FeatureExtractor on the same kind of
Pattern (rendered on the classifier's grid) that ``predict`` gives it. The plugin owns the model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dataset.store import ReflectionSet, load_reflections, render_batch
from .errors import CrystalmelaError
from .modelcard import ModelCard, library_versions, write_card
from .pattern import PAPER_GRID, GridSpec, Pattern
from .profiles import ProfileSettings


@dataclass
class TrainRequest:
    """One training job: model ``name`` on data set ``dataset`` of the build in ``data``.

    ``splits`` replaces the build's train/val/test assignment (``crystalmela evaluate`` uses it for
    cross-validation folds): split name → row positions in the whole ``dataset`` view."""

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
    _all: ReflectionSet | None = field(default=None, init=False, repr=False, compare=False)

    def reflections(self, split: str | None) -> ReflectionSet:
        if self.splits is None or split is None:
            return load_reflections(self.data, self.dataset, split)
        if split not in self.splits:
            raise CrystalmelaError(f"training request has no split {split!r} (has {', '.join(self.splits)})")
        if self._all is None:
            self._all = load_reflections(self.data, self.dataset, None)
        return self._all.subset(np.asarray(self.splits[split]))

    def render(self, rset: ReflectionSet, idx) -> np.ndarray:
        """Profiles of rows ``idx`` on this classifier's grid (float32, max = grid.normalize_max)."""
        return render_batch(rset, idx, self.grid, self.profile)

    def _cache(self) -> tuple[Path, dict[str, np.ndarray]]:
        from .plugins import get_registry
        extractor = get_registry().feature(self.feature)
        cache = self.data / "features" / f"{self.feature}-v{extractor.version}-{_grid_key(self.grid)}.npz"
        store: dict[str, np.ndarray] = {}
        if cache.exists():
            with np.load(cache, allow_pickle=False) as z:
                store = {k: z[k] for k in z.files}
        return cache, store

    def features(self, split: str | None) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) for a split: the registered feature extractor on rendered patterns (cached)."""
        from .plugins import get_registry
        extractor = get_registry().feature(self.feature)
        rset = self.reflections(split)
        cache, store = self._cache()
        known = dict(zip(store.get("ids", np.array([], dtype=str)).tolist(), range(len(store.get("ids", [])))))
        missing = [i for i, ident in enumerate(rset.ids) if ident not in known]
        if missing:
            new = extract_features(rset, missing, extractor.extract, self.grid, self.profile,
                                   progress=self.progress, desc=f"{self.feature} features")
            ids = np.concatenate([store.get("ids", np.array([], dtype=str)), rset.ids[missing]])
            X_all = np.concatenate([store["X"], new]) if "X" in store else new
            cache.parent.mkdir(exist_ok=True)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, ids=ids.astype(str), X=X_all)
            tmp.replace(cache)
            store = {"ids": ids, "X": X_all}
            known = dict(zip(ids.tolist(), range(len(ids))))
        rows = np.array([known[i] for i in rset.ids.tolist()])
        return store["X"][rows], rset.labels

    def iter_features(self, split: str | None, batch: int = 1024):
        """Yield (X, y) batches of a split: from the feature cache when it holds every row, else
        rendered now and not cached (whole-profile features of a large set would be gigabytes)."""
        from .plugins import get_registry
        rset = self.reflections(split)
        _, store = self._cache()
        known = dict(zip(store.get("ids", np.array([], dtype=str)).tolist(), range(len(store.get("ids", [])))))
        if store and all(i in known for i in rset.ids.tolist()):
            rows = np.array([known[i] for i in rset.ids.tolist()])
            for start in range(0, len(rows), batch):
                yield store["X"][rows[start:start + batch]], rset.labels[start:start + batch]
            return
        extract = get_registry().feature(self.feature).extract
        for start in range(0, len(rset), batch):
            idx = np.arange(start, min(start + batch, len(rset)))
            yield (extract_features(rset, idx, extract, self.grid, self.profile, progress=False),
                   rset.labels[idx])

    def data_summary(self) -> dict:
        manifest = json.loads((self.data / "dataset.json").read_text())
        return {"path": str(self.data), "sha256": manifest.get("sha256"),
                "format": manifest.get("format"), "build_settings": manifest.get("settings"),
                "counts": manifest["counts"].get(self.dataset)}

    def write_card(self, weights: str, *, settings: dict, metrics: dict, libraries: tuple[str, ...] = ()
                   ) -> ModelCard:
        return write_card(self.out_dir, weights=weights, model=self.name, model_version=self.version,
                          dataset=self.dataset, feature=self.feature, data=self.data_summary(),
                          settings={**settings, "seed": self.seed, "grid": self.grid.model_dump(),
                                    "profile": self.profile.model_dump()},
                          metrics=metrics, libraries=library_versions(*libraries),
                          code_version=_code_version())


def _grid_key(grid: GridSpec) -> str:
    import hashlib
    return hashlib.sha1(grid.model_dump_json().encode()).hexdigest()[:8]


def _code_version() -> str:
    """Package version plus the git commit when run from a checkout (what produced the model)."""
    import subprocess
    from .dataset.build import _version
    v = _version()
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{v}+g{sha}" if sha else v


def extract_features(rset: ReflectionSet, rows, extract, grid: GridSpec, profile: ProfileSettings,
                     *, batch: int = 512, progress: bool = True, desc: str = "features") -> np.ndarray:
    """Render rows in batches and apply ``extract`` to each as a Pattern (as predict does)."""
    from tqdm import tqdm
    rows = np.asarray(rows)
    out = []
    x = grid.two_theta
    with tqdm(total=len(rows), disable=not progress, desc=desc, unit="pattern") as bar:
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            Y = render_batch(rset, chunk, grid, profile)
            for y in Y:
                # exactly what predict() does to an input: put it on the grid, then extract
                p = Pattern(x, y, wavelength=grid.wavelength, reader="simulated").to_grid(grid)
                out.append(np.asarray(extract(p), dtype=np.float32))
            bar.update(len(chunk))
    if not out:
        raise CrystalmelaError("no patterns to extract features from")
    return np.stack(out)
