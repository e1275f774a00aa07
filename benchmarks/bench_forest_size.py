"""Forest size against accuracy: the paper-size configuration beside smaller ones, same features.

    python benchmarks/bench_forest_size.py DATA_DIR random_forest|extra_trees

Fits each configuration on the train split of the full set (features cached in DATA_DIR/features),
scores top-1 / top-2 / balanced accuracy on the val split and reports the size: the skops file when
it is small enough to write quickly, otherwise node count × 120 bytes (in-memory node + class counts).
This is how the shipped "compact" configurations were chosen (docs/models.md).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__)
        return 2
    data, name = Path(argv[0]), argv[1]
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    from crystalmela.metrics import classification_metrics
    from crystalmela.plugins import get_registry
    from crystalmela.sklearn_models import ProbaModel, save
    from crystalmela.training import TrainRequest

    spec = get_registry().classifier(name)
    req = TrainRequest(name=spec.name, version=spec.version, feature=spec.feature, dataset="full",
                       data=data, out_dir=Path("."), progress=True)
    X, y = req.features("train")
    Xv, yv = req.features("val")
    cls = RandomForestClassifier if name == "random_forest" else ExtraTreesClassifier
    big = {"n_estimators": 250, "max_depth": 30 if name == "random_forest" else None, "min_samples_leaf": 1}
    configs = [big, {"n_estimators": 100, "min_samples_leaf": 20, "max_depth": 30},
               {"n_estimators": 60, "min_samples_leaf": 50, "max_depth": 30},
               {"n_estimators": 40, "min_samples_leaf": 100, "max_depth": 30}]
    tmp = Path("bench_forest_size.skops")
    for cfg in configs:
        t = time.perf_counter()
        model = cls(**cfg, n_jobs=-1, random_state=0).fit(X, y)
        fit = time.perf_counter() - t
        met = classification_metrics(yv, ProbaModel(model).predict_proba(Xv))
        nodes = sum(e.tree_.node_count for e in model.estimators_)
        if nodes < 3_000_000:
            save(model, tmp)
            size, how = tmp.stat().st_size, "file"
            tmp.unlink()
        else:
            size, how = nodes * 120, "estimated"
        print(f"{cfg}: fit {fit:.0f} s, {nodes} nodes, {size / 1e6:.1f} MB ({how}), "
              f"top-1 {met['accuracy']:.4f} top-2 {met['top2_accuracy']:.4f} "
              f"balanced {met['balanced_accuracy']:.4f}", flush=True)
        del model
    return 0


if __name__ == "__main__":
    sys.exit(main())
