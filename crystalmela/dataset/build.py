"""``crystalmela dataset build``: CIF folders and/or synthetic crystals → a Parquet reflection-list set.

Layout of a data set folder::

    parts/<task>.parquet      reflection lists, one file per task (written atomically: resumable)
    parts/<task>.rejects.json CIF files refused in that task, with the reason
    index.parquet             kept rows: id, part, row, labels, split (duplicates removed)
    dataset.json              settings, counts per set / class / split, rejections, sizes, hash

Work is cut into tasks of ``chunk_size`` structures; tasks run in this process, in a process pool
(all cores by default) or on a Dask cluster (``scheduler="tcp://..."``). A task whose part file
exists is skipped, so an interrupted build resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from crystalmela.simulation.diffraction import PAPER_D_MIN
from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.parallel import map_unordered
from crystalmela.simulation.structure import StructureError, read_cif
from crystalmela.simulation.synthetic import CELL_RANGE, generate
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS
from crystalmela.dataset.rows import crystal_row, to_table

FORMAT = "crystalmela-reflections/2"  # /2 adds hkl + Hall symbol (preferred-orientation augmentation)
SPLITS = (("train", 0.8), ("val", 0.1), ("test", 0.1))
MAX_RWP = 0.10


class BuildSettings(BaseModel):
    """Everything that determines a data set's content (stored in dataset.json)."""

    model_config = ConfigDict(extra="forbid")

    synthetic: int = Field(0, ge=0, description="number of synthetic structures")
    organic_fraction: float = Field(0.5, ge=0, le=1, description="share of organic synthetic ones")
    prior_power: float = Field(1.0, gt=0, le=1,
                               description="1 = database space-group frequencies; <1 flattens them")
    cell_model: Literal["reduced", "uniform"] = Field(
        "reduced", description="monoclinic/triclinic angles: reduced cells from random row offsets, "
                               "or the first generator's uniform draws (data sets built before it)")
    sg_draw: Literal["exact", "redraw"] = Field(
        "exact", description="space groups: each drawn one kept until a crystal of it is made, so the "
                             "crystals follow the prior; or redrawn after each failed attempt (data sets "
                             "built before the option, skewed toward low symmetry)")
    axis_spread: float = Field(1.0, gt=0, le=3,
                               description="scales the spread of the axis ratios; at 1 long axes are rare")
    cif_dirs: list[str] = Field(default_factory=list)
    seed: int = 0
    chunk_size: int = Field(500, ge=1, le=100_000)
    d_min: float = Field(PAPER_D_MIN, gt=0.2, description="shortest d-spacing stored (Å)")


# --------------------------------------------------------------------------------------- tasks

def _tasks(settings: BuildSettings) -> list[dict]:
    tasks = []
    n, size = settings.synthetic, settings.chunk_size
    for i, start in enumerate(range(0, n, size)):
        tasks.append({"name": f"synthetic-{i:05d}", "kind": "synthetic", "index": i,
                      "n": min(size, n - start)})
    files = []
    for d in settings.cif_dirs:
        root = Path(d)
        if not root.is_dir():
            raise CrystalmelaError(f"{d}: not a folder of CIF files")
        files += sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in (".cif", ".mmcif"))
    for i, start in enumerate(range(0, len(files), size)):
        tasks.append({"name": f"cif-{i:05d}", "kind": "cif", "files": files[start:start + size]})
    return tasks


def run_task(task: dict, settings: dict) -> tuple[pa.Table, list[dict]]:
    """One unit of work → (rows table, rejections). Pure function of its arguments (picklable)."""
    s = BuildSettings(**settings)
    rows, rejects = [], []
    if task["kind"] == "synthetic":
        n_org = int(round(task["n"] * s.organic_fraction))
        seq = np.random.SeedSequence([s.seed, task["index"]])
        s_org, s_inorg = seq.spawn(2)
        for kind, n, ss in (("organic", n_org, s_org), ("inorganic", task["n"] - n_org, s_inorg)):
            for j, crystal in enumerate(generate(n, kind, ss, prior_power=s.prior_power,
                                                   cell_model=s.cell_model, sg_draw=s.sg_draw,
                                                   axis_spread=s.axis_spread)):
                row = crystal_row(crystal, f"syn-{s.seed}-{task['index']}-{kind[0]}{j}", "synthetic",
                                  s.d_min)
                if row is not None:
                    rows.append(row)
    else:
        for path in task["files"]:
            rows_f, rej = _cif_rows(path, s.d_min)
            rows += rows_f
            rejects += rej
    return to_table(rows), rejects


def _cif_rows(path: str, d_min: float) -> tuple[list[dict], list[dict]]:
    """Apply the paper's filters; every refusal is a record, never an exception."""
    try:
        crystals = read_cif(path)
    except StructureError as exc:
        return [], [{"file": path, "block": exc.block, "reason": exc.reason, "message": str(exc)}]
    except Exception as exc:  # a library failure on one odd file must not stop a build
        return [], [{"file": path, "block": None, "reason": "error", "message": f"{type(exc).__name__}: {exc}"}]
    rows, rejects = [], []
    for c in crystals:
        def reject(reason, message):
            rejects.append({"file": path, "block": c.name, "reason": reason, "message": message})
        lengths = c.cell[:3]
        if min(lengths) < CELL_RANGE[0] or max(lengths) > CELL_RANGE[1]:
            reject("cell_length", f"cell lengths {tuple(round(v, 3) for v in lengths)} outside "
                   f"{CELL_RANGE[0]}–{CELL_RANGE[1]} Å")
            continue
        rwp = c.meta.get("rwp")
        if rwp is not None and rwp > MAX_RWP:
            reject("rwp", f"Rwp {rwp:.3f} > {MAX_RWP}")
            continue
        try:
            row = crystal_row(c, f"cif-{Path(path).name}#{c.name}", "cif", d_min)
        except Exception as exc:
            reject("error", f"{type(exc).__name__}: {exc}")
            continue
        if row is None:
            reject("no_reflections", "no reflection in range")
            continue
        rows.append(row)
    return rows, rejects


# ------------------------------------------------------------------------------------ running

def build(out: str | Path, settings: BuildSettings, *, workers: int | None = None,
          scheduler: str | None = None, progress: bool = True) -> dict:
    """Build (or resume) a data set in ``out``; returns the manifest written to dataset.json."""
    out = Path(out)
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "dataset.json"
    settings_dict = settings.model_dump()
    previous = out / "settings.json"
    if previous.exists() and json.loads(previous.read_text()) != settings_dict:
        raise CrystalmelaError(f"{out}: holds a data set built with other settings; use a new folder "
                               f"(or delete {out}) to build with these")
    previous.write_text(json.dumps(settings_dict, indent=1))
    tasks = _tasks(settings)
    todo = [t for t in tasks if not (parts / f"{t['name']}.parquet").exists()]
    t0 = time.perf_counter()
    n_new = _execute(todo, settings_dict, parts, workers, scheduler, progress)
    elapsed = time.perf_counter() - t0
    manifest = finalize(out, settings, tasks)
    manifest["last_run"] = {"tasks_run": len(todo), "tasks_skipped": len(tasks) - len(todo),
                            "structures_written": n_new, "seconds": round(elapsed, 2),
                            "structures_per_second": round(n_new / elapsed, 1) if elapsed > 0 else None,
                            "workers": "dask" if scheduler else (workers or os.cpu_count())}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def _write_part(parts: Path, name: str, table: pa.Table, rejects: list[dict]) -> int:
    tmp = parts / f".{name}.parquet.tmp"
    if rejects or name.startswith("cif"):
        (parts / f"{name}.rejects.json").write_text(json.dumps(rejects))
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, parts / f"{name}.parquet")  # atomic: a part exists only when complete
    return table.num_rows


def _progress(total, enabled):
    from tqdm import tqdm
    return tqdm(total=total, unit="task", disable=not enabled, desc="building")


def _execute(todo, settings_dict, parts, workers, scheduler, progress) -> int:
    n = 0
    if not todo:
        return 0
    bar = _progress(len(todo), progress)
    for task, (table, rejects) in map_unordered(run_task, todo, settings_dict, workers=workers,
                                                scheduler=scheduler):
        n += _write_part(parts, task["name"], table, rejects)
        bar.update()
    bar.close()
    return n


# ----------------------------------------------------------------------------------- finalise

def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("crystalmela")
    except PackageNotFoundError:
        return "unknown"


def _dedupe_key(row) -> tuple:
    return (row["space_group"], row["formula"], round(row["a"], 2), round(row["b"], 2),
            round(row["c"], 2), round(row["alpha"], 1), round(row["beta"], 1), round(row["gamma"], 1))


def split_of(ids: list[str], strata: list[tuple], seed: int) -> list[str]:
    """Stratified train/val/test assignment, fixed by seed and stable under additions.

    Each id gets a uniform number from a hash of (seed, id); within a stratum (crystal system,
    organic) ids are ranked by it and the first 80 % go to train, the next 10 % to val, the rest test.
    """
    u = np.array([int.from_bytes(hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest(),
                                 "little") for i in ids], dtype=np.uint64)
    out = np.empty(len(ids), dtype=object)
    groups: dict[tuple, list[int]] = {}
    for k, s in enumerate(strata):
        groups.setdefault(s, []).append(k)
    for members in groups.values():
        members = np.array(members)
        order = members[np.argsort(u[members], kind="stable")]
        n = len(order)
        edges = np.cumsum([0] + [round(f * n) for _, f in SPLITS[:-1]])
        for (name, _), lo, hi in zip(SPLITS, edges, list(edges[1:]) + [n]):
            out[order[lo:hi]] = name
    return list(out)


def finalize(out: Path, settings: BuildSettings, tasks: list[dict]) -> dict:
    parts = out / "parts"
    meta_cols = ["id", "source", "organic", "space_group", "crystal_system", "formula",
                 "a", "b", "c", "alpha", "beta", "gamma"]
    index_rows, rejects = [], []
    seen: dict[tuple, str] = {}
    duplicates = 0
    digest = hashlib.sha256()
    total_bytes = 0
    for t in tasks:
        f = parts / f"{t['name']}.parquet"
        if not f.exists():
            continue
        data = f.read_bytes()
        digest.update(data)
        total_bytes += len(data)
        table = pq.read_table(f, columns=meta_cols).to_pylist()
        rj = parts / f"{t['name']}.rejects.json"
        if rj.exists():
            rejects += json.loads(rj.read_text())
        for row_no, row in enumerate(table):
            if row["source"] == "cif":
                key = _dedupe_key(row)
                if key in seen:
                    duplicates += 1
                    rejects.append({"file": row["id"], "block": None, "reason": "duplicate",
                                    "message": f"same structure as {seen[key]}"})
                    continue
                seen[key] = row["id"]
            index_rows.append({"id": row["id"], "part": t["name"], "row": row_no,
                               "source": row["source"], "organic": row["organic"],
                               "space_group": row["space_group"],
                               "crystal_system": row["crystal_system"]})
    splits = split_of([r["id"] for r in index_rows],
                      [(r["crystal_system"], r["organic"]) for r in index_rows], settings.seed)
    for r, s in zip(index_rows, splits):
        r["split"] = s
    index = pa.Table.from_pylist(index_rows, schema=pa.schema([
        ("id", pa.string()), ("part", pa.string()), ("row", pa.int32()), ("source", pa.string()),
        ("organic", pa.bool_()), ("space_group", pa.int16()), ("crystal_system", pa.string()),
        ("split", pa.string())]))
    pq.write_table(index, out / "index.parquet")
    counts = {}
    for name, keep in (("full", lambda r: True), ("organic", lambda r: r["organic"]),
                       ("inorganic", lambda r: not r["organic"])):
        rows = [r for r in index_rows if keep(r)]
        counts[name] = {
            "n": len(rows),
            "per_class": {cs: sum(r["crystal_system"] == cs for r in rows) for cs in CRYSTAL_SYSTEMS},
            "per_split": dict(Counter(r["split"] for r in rows)),
        }
    if rejects:
        import csv
        with open(out / "rejects.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["file", "block", "reason", "message"])
            w.writeheader()
            w.writerows(rejects)
    n = len(index_rows)
    return {
        "format": FORMAT,
        "settings": settings.model_dump(),
        "crystalmela_version": _version(),
        "counts": counts,
        "sources": dict(Counter(r["source"] for r in index_rows)),
        "rejected": dict(Counter(r["reason"] for r in rejects)),
        "duplicates_removed": duplicates,
        "bytes": total_bytes,
        "bytes_per_structure": round(total_bytes / n, 1) if n else None,
        "sha256": digest.hexdigest(),
    }
