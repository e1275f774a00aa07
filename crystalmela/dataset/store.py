"""Read a built data set and render its reflection lists as profiles, a batch at a time.

Profiles are never stored: a batch of reflection lists becomes a (batch, n_points) array in one
vectorised pass (all sticks of the batch, their windows, one ``bincount``), on any GridSpec and
ProfileSettings, which is what makes other grids and augmentation cheap.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.plugin_api.pattern import PAPER_GRID, GridSpec
from crystalmela.simulation.profiles import ProfileSettings, render_many
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS, DATASETS


@dataclass
class ReflectionSet:
    """Reflection lists in CSR form: rows i has d[offsets[i]:offsets[i+1]] and intensity likewise."""

    ids: np.ndarray
    labels: np.ndarray          # index into CRYSTAL_SYSTEMS
    space_group: np.ndarray
    organic: np.ndarray
    d: np.ndarray
    intensity: np.ndarray
    offsets: np.ndarray
    manifest: dict
    hkl: np.ndarray | None = None    # (n_reflections, 3) int16; None for format /1 builds
    hall: np.ndarray | None = None   # per row: Hall symbol of the setting hkl refers to
    cell: np.ndarray | None = None   # per row: a, b, c (Å), α, β, γ (°)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx) -> "ReflectionSet":
        idx = np.asarray(idx)
        lo, hi = self.offsets[idx], self.offsets[idx + 1]
        sel = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if len(idx) else np.empty(0, int)
        offs = np.concatenate([[0], np.cumsum(hi - lo)])
        return ReflectionSet(self.ids[idx], self.labels[idx], self.space_group[idx], self.organic[idx],
                             self.d[sel], self.intensity[sel], offs, self.manifest,
                             None if self.hkl is None else self.hkl[sel],
                             None if self.hall is None else self.hall[idx],
                             None if self.cell is None else self.cell[idx])


def load_reflections(path: str | Path, dataset: str = "full", split: str | None = "train"
                     ) -> ReflectionSet:
    """The rows of a built data set for one named set (full / organic / inorganic) and split."""
    path = Path(path)
    if dataset not in DATASETS:
        raise CrystalmelaError(f"unknown data set {dataset!r}; expected one of {', '.join(DATASETS)}")
    if not (path / "index.parquet").exists() or not (path / "dataset.json").exists():
        raise CrystalmelaError(f"{path}: not a built data set (no index.parquet / dataset.json); "
                               "run `crystalmela dataset build` first")
    manifest = json.loads((path / "dataset.json").read_text())
    index = pq.read_table(path / "index.parquet")
    mask = pc.equal(index["split"], split) if split else pa.array([True] * index.num_rows)
    if dataset == "organic":
        mask = pc.and_(mask, index["organic"])
    elif dataset == "inorganic":
        mask = pc.and_(mask, pc.invert(index["organic"]))
    index = index.filter(mask)
    ids, labels, sgs, org, ds, ins, lengths = [], [], [], [], [], [], []
    has_hkl = manifest.get("format", "") >= "crystalmela-reflections/2"
    hkls, halls, cells = [], [], []
    cell_cols = ["a", "b", "c", "alpha", "beta", "gamma"]
    for part in sorted(set(index["part"].to_pylist())):
        sel = index.filter(pc.equal(index["part"], part))
        cols = ["id", "d", "intensity", *cell_cols] + (["hkl", "hall"] if has_hkl else [])
        table = pq.read_table(path / "parts" / f"{part}.parquet", columns=cols).take(sel["row"])
        cells.append(np.column_stack([table[c].to_numpy() for c in cell_cols]))
        if has_hkl:
            hkls.append(table["hkl"].combine_chunks().values.to_numpy().reshape(-1, 3))
            halls += table["hall"].to_pylist()
        ids += table["id"].to_pylist()
        labels.append(np.array([CRYSTAL_SYSTEMS.index(c) for c in sel["crystal_system"].to_pylist()]))
        sgs.append(sel["space_group"].to_numpy())
        org.append(sel["organic"].to_numpy(zero_copy_only=False))
        dcol = table["d"].combine_chunks()
        icol = table["intensity"].combine_chunks()
        ds.append(dcol.values.to_numpy())
        ins.append(icol.values.to_numpy())
        lengths.append(np.diff(dcol.offsets.to_numpy()))
    if not ids:
        raise CrystalmelaError(f"{path}: no structures in data set {dataset!r}, split {split!r}")
    lengths = np.concatenate(lengths)
    return ReflectionSet(np.array(ids), np.concatenate(labels).astype(np.int64),
                         np.concatenate(sgs), np.concatenate(org), np.concatenate(ds),
                         np.concatenate(ins), np.concatenate([[0], np.cumsum(lengths)]), manifest,
                         np.concatenate(hkls) if has_hkl else None,
                         np.array(halls) if has_hkl else None, np.concatenate(cells).astype(float))


def render_batch(rset: ReflectionSet, idx, grid: GridSpec = PAPER_GRID,
                 settings: ProfileSettings = ProfileSettings()) -> np.ndarray:
    """Profiles of rows ``idx`` on ``grid`` as float32 (batch, n_points), each max = normalize_max."""
    sub = rset.subset(np.asarray(idx))
    return render_many(sub.d.astype(float), sub.intensity.astype(float), sub.offsets, grid, settings)
