"""Predictions of the shipped models on a fixed set of patterns, recorded once so that a change that
should not alter behaviour (a refactor, a faster search) can be checked to alter none of them.

``python tests/golden.py`` rewrites ``tests/data/golden/predictions.json`` from the installed models:
run it only when a change is meant to alter predictions (a retrained model), and say so in the commit.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "data" / "golden" / "predictions.json"
# Measured scans in several formats and wavelengths (one neutron), predicted on every data set.
FILES = ["real/LiCoO2.RAW", "real/LiCoO2.UXD", "real/LiCoO2.dat", "real/dsmo.dat", "real/lmo.dat",
         "real/tbbaco.dat"]
DATASETS = ("full", "organic", "inorganic")


def record() -> dict:
    import crystalmela
    out = {}
    for f in FILES:
        for ds in DATASETS:
            pred = crystalmela.predict(HERE / "data" / f, dataset=ds)
            out[f"{f}|{ds}"] = {"per_model": pred.per_model, "ensemble": pred.ensemble,
                                "errors": pred.errors, "evidence_data": pred.evidence_data,
                                "temperatures": pred.temperatures}
    return out


if __name__ == "__main__":
    OUT.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)
