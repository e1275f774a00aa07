"""Forest size against accuracy: the paper-size configuration beside smaller ones, same features.

    python benchmarks/bench_forest_size.py DATA_DIR random_forest|extra_trees

Fits each configuration on the train split of the full set (features cached in DATA_DIR/features),
exports it as the shipped format does (crystalmela.trees.forest, an .npz of arrays), scores the exported
forest's top-1 / top-2 / balanced accuracy on the val split and reports the file size. This is how
the shipped configurations were chosen (docs/models.md).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import bad_input_exits_2  # noqa: E402


@bad_input_exits_2
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__)
        return 2
    data, name = Path(argv[0]), argv[1]
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    from crystalmela.evaluation.metrics import classification_metrics
    from crystalmela.plugins import get_registry
    from crystalmela.plugin_api.forests import load, save
    from crystalmela.training.request import TrainRequest

    spec = get_registry().classifier(name)
    req = TrainRequest(name=spec.name, version=spec.version, feature=spec.feature, dataset="full",
                       data=data, out_dir=Path("."), progress=True)
    X, y = req.features("train")
    Xv, yv = req.features("val")
    cls = RandomForestClassifier if name == "random_forest" else ExtraTreesClassifier
    big = {"n_estimators": 250, "max_depth": 30 if name == "random_forest" else None, "min_samples_leaf": 1}
    configs = [big] + [{"n_estimators": n, "min_samples_leaf": leaf, "max_depth": 30}
                       for n, leaf in ((250, 5), (100, 5), (100, 10), (100, 20), (40, 25))]
    tmp = Path("bench_forest_size.npz")
    for cfg in configs:
        t = time.perf_counter()
        model = cls(**cfg, n_jobs=-1, random_state=0).fit(X, y)
        fit = time.perf_counter() - t
        nodes = sum(e.tree_.node_count for e in model.estimators_)
        save(model, tmp)
        del model
        size = tmp.stat().st_size
        met = classification_metrics(yv, load(tmp).predict_proba(Xv))
        tmp.unlink()
        print(f"{cfg}: fit {fit:.0f} s, {nodes} nodes, {size / 1e6:.2f} MB, "
              f"top-1 {met['accuracy']:.4f} top-2 {met['top2_accuracy']:.4f} "
              f"balanced {met['balanced_accuracy']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
