"""Two or more trainings of a feature-based model, scored on the very same val rows: which is better?

    python benchmarks/compare_models.py DATA_DIR MODEL_DIR [MODEL_DIR ...]

Each MODEL_DIR is a folder written by ``crystalmela train`` for a forest plugin (``model_card.json``
beside its weights; an installed one, ``plugins/*/crystalmela_*/models/<data set>/``, or a new one).
The val rows and their rendering come from the cards (data set, seed, ``--max-val``, grid, profile,
lab conditions, preprocessing), so the cards must agree on them, and the features from the installed
extractor, whose version must be the one the cards were trained on. Features already in
``DATA_DIR/features/`` are read from there, missing ones computed.

Why: each card's own ``metrics.val`` was measured on the val rows as its training run rendered them,
and a change to the renderer or to the cache (``RENDER_VERSION``) makes two cards' figures
incomparable. Here every model sees one set of feature rows: lab-like (when the cards trained on lab
conditions) and clean. For each later folder the rows only it or only the first folder gets right
are counted too: a difference smaller than those counts' noise (≈ √(their sum)) is no difference.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SAME = ("dataset", "feature", "feature_version")
SAME_SETTINGS = ("seed", "grid", "profile", "augment", "preprocess")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="the data set build the models were trained on")
    ap.add_argument("models", nargs="+", type=Path, help="model folders (model_card.json + weights)")
    args = ap.parse_args(argv)
    from crystalmela import CrystalmelaError

    try:
        rows = _compare(args.data, args.models)
    except CrystalmelaError as exc:
        print(f"compare_models: {exc}", file=sys.stderr)
        return 2
    for cond, (n, scores) in rows.items():
        print(f"\n{cond} val, {n} patterns:  top-1   top-2   balanced  F1w     only this right / only first right")
        for i, (name, met, only) in enumerate(scores):
            extra = "" if i == 0 else f"   {only[0]} / {only[1]}"
            print(f"  {name:40s} {met['accuracy']:.4f}  {met['top2_accuracy']:.4f}  "
                  f"{met['balanced_accuracy']:.4f}    {met['f1_weighted']:.4f}{extra}")
    return 0


def _compare(data: Path, folders: list[Path]) -> dict:
    from crystalmela import CrystalmelaError
    from crystalmela.metrics import classification_metrics
    from crystalmela.modelcard import read_verified
    from crystalmela.sklearn_models import load_dir

    if not (data / "dataset.json").is_file():
        raise CrystalmelaError(f"{data}: not a data set build (no dataset.json)")
    cards, models = [], []
    for folder in folders:
        if not (folder / "model_card.json").is_file():
            raise CrystalmelaError(f"{folder}: no model_card.json (not a model folder)")
        card, _ = read_verified(folder)
        models.append(load_dir(card.feature, folder))
        cards.append(card)
    first = cards[0]
    for folder, card in zip(folders[1:], cards[1:]):
        for key in SAME:
            if getattr(card, key) != getattr(first, key):
                raise CrystalmelaError(f"{folder}: {key} {getattr(card, key)!r}, not {getattr(first, key)!r} "
                                       f"as {folders[0]}: not comparable on the same rows")
        for key in SAME_SETTINGS:
            if card.settings.get(key) != first.settings.get(key):
                raise CrystalmelaError(f"{folder}: trained with other {key} settings than {folders[0]}: "
                                       "its val rows are rendered differently")
        if card.data.get("max_val") != first.data.get("max_val"):
            raise CrystalmelaError(f"{folder}: validated on {card.data.get('max_val')} rows, "
                                   f"{folders[0]} on {first.data.get('max_val')}")
    request = _request(data, first)
    out = {}
    for cond, augment in (("lab-like", True), ("clean", False)):
        if augment and request.augment is None:
            continue
        X, y = request.features("val", augment=augment)
        probs = [m.predict_proba(X) for m in models]
        right0 = probs[0].argmax(axis=1) == y
        scores = []
        for folder, p in zip(folders, probs):
            right = p.argmax(axis=1) == y
            scores.append((str(folder), classification_metrics(y, p),
                           (int((right & ~right0).sum()), int((right0 & ~right).sum()))))
        out[cond] = (len(y), scores)
    return out


def _request(data: Path, card):
    """The training request whose val rows the card's model was scored on."""
    from crystalmela import CrystalmelaError
    from crystalmela.augment import AugmentSettings
    from crystalmela.pattern import GridSpec
    from crystalmela.plugins import get_registry
    from crystalmela.preprocess import NONE as NO_PREPROCESS
    from crystalmela.preprocess import PreprocessSettings
    from crystalmela.profiles import ProfileSettings
    from crystalmela.training import TrainRequest

    try:
        extractor = get_registry().feature(card.feature)
    except CrystalmelaError as exc:
        raise CrystalmelaError(f"feature {card.feature!r} of the cards is not installed: {exc}") from None
    if card.feature_version and card.feature_version != extractor.version:
        raise CrystalmelaError(f"the cards were trained on {card.feature} version {card.feature_version}; "
                               f"the installed extractor is version {extractor.version}")
    s = card.settings
    return TrainRequest(name=card.model, version=card.model_version, feature=card.feature, dataset=card.dataset,
                        data=data, out_dir=data, grid=GridSpec(**s["grid"]), seed=int(s.get("seed", 0)),
                        progress=False, profile=ProfileSettings(**s.get("profile", {})),
                        augment=AugmentSettings(**s["augment"]) if s.get("augment") else None,
                        preprocess=PreprocessSettings(**s["preprocess"]) if s.get("preprocess") else
                        NO_PREPROCESS, max_val=card.data.get("max_val"))


if __name__ == "__main__":
    sys.exit(main())
