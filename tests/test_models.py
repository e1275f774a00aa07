"""The model plugins (the paper's three and lattice_fit): train through the public API, save as data,
load with verification; the shipped models load, predict, and stay within the size budget."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crystalmela import predict
from crystalmela.simulation.augment import AugmentSettings
from crystalmela.cli.main import main
from crystalmela.dataset import BuildSettings, build
from crystalmela.plugin_api.errors import CrystalmelaError, ModelNotAvailableError
from crystalmela.plugin_api.modelcard import read_verified
from crystalmela.plugins import get_registry
from crystalmela.pipeline import ensemble
from crystalmela.pipeline.ensemble import combine_rows
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS, DATASETS
from crystalmela.training.request import TrainRequest

MODELS = ("random_forest", "extra_trees", "cnn_flax", "lattice_fit")
PAPER_MODELS = MODELS[:3]
EXAMPLE = Path(__file__).parent.parent / "examples" / "LiCoO2.RAW"
TINY = {"random_forest": {"n_estimators": 5, "min_samples_leaf": 2},
        "extra_trees": {"n_estimators": 5, "min_samples_leaf": 2},
        "lattice_fit": {"n_estimators": 5, "min_samples_leaf": 2},
        "cnn_flax": {"steps": 12, "eval_every": 6, "batch": 16, "val_size": 40, "schedule": "cosine",
                     "select": "balanced_accuracy"}}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "ds"
    build(out, BuildSettings(synthetic=160, chunk_size=80, seed=11), workers=1, progress=False)
    return out


@pytest.mark.parametrize("name", MODELS)
def test_train_save_load_predict(tmp_path, tiny_data, name):
    spec = get_registry().classifier(name)
    req = TrainRequest.of(spec, "full", tiny_data, tmp_path / "full", config=dict(TINY[name]), progress=False)
    card = spec.train(req)
    assert card.dataset == "full" and card.classes == list(CRYSTAL_SYSTEMS)
    assert card.data["sha256"] and card.libraries["numpy"] and card.code_version
    assert 0 <= card.metrics["val"]["accuracy"] <= 1
    card2, weights = read_verified(tmp_path / "full")
    assert card2.sha256 == card.sha256 and weights.suffix in (".npz", ".msgpack")


def test_tampered_weights_are_refused(tmp_path, tiny_data):
    spec = get_registry().classifier("random_forest")
    req = TrainRequest.of(spec, "full", tiny_data, tmp_path / "m", config=dict(TINY["random_forest"]),
                       progress=False)
    card = spec.train(req)
    weights = tmp_path / "m" / card.weights
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelNotAvailableError, match="sha256"):
        read_verified(tmp_path / "m")
    (tmp_path / "m" / "model_card.json").write_text("{not json")
    with pytest.raises(ModelNotAvailableError, match="not a valid model card"):
        read_verified(tmp_path / "m")
    # a card missing a field names the field, in one line
    fields = card.model_dump(mode="json")
    del fields["sha256"]
    (tmp_path / "m" / "model_card.json").write_text(json.dumps(fields))
    with pytest.raises(ModelNotAvailableError, match="not a valid model card: sha256: Field required$"):
        read_verified(tmp_path / "m")


def test_a_model_trained_on_other_features_is_refused_not_used(tmp_path, tiny_data, monkeypatch):
    """The card records the feature extractor's version; a model whose features have since changed
    is refused with a clear error (through use_model and through loading), and predict reports it
    beside the other models' answers."""
    import dataclasses
    reg = get_registry()
    spec = reg.classifier("extra_trees")
    req = TrainRequest.of(spec, "full", tiny_data, tmp_path / "m", config=dict(TINY["extra_trees"]),
                       progress=False)
    card = spec.train(req)
    assert card.feature_version == reg.feature(spec.feature).version
    model = spec.load_dir(tmp_path / "m")
    reg.use_model("extra_trees", "full", model)             # the matching version is accepted
    stale = dataclasses.replace(model, card=model.card.model_copy(update={"feature_version": "0-old"}))
    with pytest.raises(ModelNotAvailableError, match="version 0-old.*retrain"):
        reg.use_model("extra_trees", "full", stale)
    reg._models.clear()
    monkeypatch.setitem(reg.classifiers, "extra_trees", dataclasses.replace(spec, load=lambda ds: stale))
    pred = predict(EXAMPLE, models=["extra_trees", "cnn_flax"])
    assert "retrain" in pred.errors["extra_trees"] and "extra_trees" not in pred.per_model
    assert pred.per_model["cnn_flax"] and pred.top1


def test_a_model_trained_on_a_version_the_extractor_only_extended_gets_the_first_columns(tmp_path, tiny_data,
                                                                                          monkeypatch):
    """An extractor version that only appended columns lists the earlier one in ``prefixes``: models
    trained on it keep working, fed the first columns (their answers unchanged); any other version is
    still refused."""
    import dataclasses
    from crystalmela.plugins import FirstColumns
    reg = get_registry()
    spec = reg.classifier("extra_trees")
    extractor = reg.feature(spec.feature)
    req = TrainRequest.of(spec, "full", tiny_data, tmp_path / "m", config=dict(TINY["extra_trees"]),
                       progress=False)
    spec.train(req)
    model = spec.load_dir(tmp_path / "m")
    X, _ = req.features("val")
    n = X.shape[1]
    longer = dataclasses.replace(extractor, version="next", prefixes={extractor.version: n},
                                 extract=lambda p: np.r_[extractor.extract(p), 7.0, -3.0])
    monkeypatch.setitem(reg.features, spec.feature, longer)
    adapted = reg.adapt("extra_trees", "full", model)
    assert isinstance(adapted, FirstColumns) and adapted.card is model.card
    wide = np.c_[X, np.full((len(X), 2), 99.0)]
    assert np.array_equal(adapted.predict_proba(wide), model.predict_proba(X))
    reg.use_model("extra_trees", "full", model)
    pred = predict(EXAMPLE, models=["extra_trees"])
    assert not pred.errors and pred.per_model["extra_trees"]
    monkeypatch.setitem(reg.features, spec.feature, dataclasses.replace(longer, prefixes={"other": n}))
    with pytest.raises(ModelNotAvailableError, match="retrain"):
        reg.adapt("extra_trees", "full", model)


@pytest.mark.parametrize("prefixes", [{"2": 3}, {"1": 0}, {"1": True}, {"1": 2.5}, {"1": -4}])
def test_bad_prefixes_are_refused(prefixes):
    from crystalmela.plugin_api.specs import FeatureExtractor
    with pytest.raises(ValueError, match="prefixes"):
        FeatureExtractor("f", "2", lambda p: np.zeros(3), prefixes=prefixes)


def test_cli_train_and_bad_options(tmp_path, tiny_data, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(TINY["extra_trees"]))
    assert main(["train", "--model", "extra_trees", "--dataset", "inorganic", "--data", str(tiny_data),
                 "--config", str(cfg), "--out", str(tmp_path / "et"), "--quiet"]) == 0
    assert (tmp_path / "et" / "inorganic" / "model_card.json").exists()
    assert main(["train", "--model", "extra_trees", "--data", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "not a built data set" in capsys.readouterr().err
    assert main(["train", "--model", "nope", "--data", str(tiny_data)]) == 2
    assert main(["train", "--model", "random_forest", "--data", str(tiny_data), "--config", "galaxy",
                 "--out", str(tmp_path / "rf"), "--quiet"]) == 2
    assert "unknown random_forest configuration 'galaxy'" in capsys.readouterr().err


def test_cli_train_on_a_subset(tmp_path, tiny_data, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(TINY["lattice_fit"]))
    assert main(["train", "--model", "lattice_fit", "--data", str(tiny_data), "--config", str(cfg),
                 "--out", str(tmp_path / "lf"), "--max-train", "50", "--max-val", "10", "--quiet"]) == 0
    card = json.loads((tmp_path / "lf" / "full" / "model_card.json").read_text())
    assert card["metrics"]["train_size"] == 50 and card["metrics"]["val"]["n"] == 10
    assert card["data"]["max_train"] == 50 and card["data"]["max_val"] == 10
    for flag, bad in (("--max-train", "0"), ("--max-train", "-3"), ("--max-val", "0"), ("--workers", "0")):
        with pytest.raises(SystemExit) as exit_:                 # argparse's usage error
            main(["train", "--model", "lattice_fit", "--data", str(tiny_data), "--out", str(tmp_path / "x"),
                  flag, bad])
        assert exit_.value.code == 2
        assert f"{flag}: expected a whole number ≥ 1, got '{bad}'" in capsys.readouterr().err
        assert not (tmp_path / "x").exists()
    assert "estimator" not in card["settings"]                   # lattice_fit's default: extra trees


@pytest.mark.parametrize("config, match", [
    ({"learning_rate": 0.1}, "bad ExtraTreesClassifier setting"),      # a boosting setting
    ({"n_estimators": -1}, "bad ExtraTreesClassifier setting"),
    ({"estimator": "HistGradientBoostingClassifier"}, "not a forest this plugin can export"),
    ({"estimator": "KMeans"}, "not a forest this plugin can export"),
])
def test_cli_train_bad_estimator_settings_are_clear_errors(tmp_path, tiny_data, capsys, config, match):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(config))
    assert main(["train", "--model", "lattice_fit", "--data", str(tiny_data), "--config", str(cfg),
                 "--out", str(tmp_path / "lf"), "--max-train", "50", "--max-val", "10", "--quiet"]) == 2
    assert match in capsys.readouterr().err


def test_cli_train_records_augmentation_preprocessing_and_calibration(tmp_path, tiny_data, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(TINY["random_forest"]))
    assert main(["train", "--model", "random_forest", "--data", str(tiny_data), "--config", str(cfg),
                 "--out", str(tmp_path / "rf"), "--preprocess", "smooth=5,background", "--quiet"]) == 0
    assert "calibrated: T =" in capsys.readouterr().out
    card, _ = read_verified(tmp_path / "rf" / "full")
    assert card.settings["augment"]["fwhm"] == [0.04, 0.25]
    assert card.settings["preprocess"]["background"] is True
    assert card.calibration["temperature"] > 0 and "augmented" in card.calibration["fitted_on"]
    assert "val_clean" in card.metrics
    # predict applies what the card says: the model's preprocessing and its temperature
    reg = get_registry()
    spec = reg.classifier("random_forest")
    reg.use_model("random_forest", "full", spec.load_dir(tmp_path / "rf" / "full"))
    pred = predict(EXAMPLE, models=["random_forest"])
    assert "SNIP" in pred.preprocessing["random_forest"]
    assert pred.temperatures["random_forest"] == pytest.approx(card.calibration["temperature"])
    raw = predict(EXAMPLE, models=["random_forest"], calibrate=False)
    assert not raw.temperatures and raw.top1 == pred.top1


@pytest.mark.parametrize("augment, says", [
    (None, "clean"), (AugmentSettings(), "lab-condition augmented"),
    (AugmentSettings(clean_fraction=0.5), "lab-condition augmented (clean_fraction 0.5)"),
    (AugmentSettings(clean_fraction=0.5, counts=(100.0, 1000.0)),
     "lab-condition augmented (clean_fraction 0.5, counts (100.0, 1000.0))"),
])
def test_a_fit_on_non_default_renderings_says_which_settings_differ(augment, says):
    from crystalmela.training.calibration import describe_rendering
    assert describe_rendering(augment) == says


def test_cli_train_swaps_the_model_in_only_when_done_and_keeps_the_one_it_replaces(tmp_path, tiny_data, capsys):
    """Retraining into a folder that holds a model (by default the plugin's shipped one) must not
    lose it: a failed run leaves it in place, a finished one keeps it as <dataset>.previous."""
    cfg, bad = tmp_path / "cfg.json", tmp_path / "bad.json"
    cfg.write_text(json.dumps(TINY["random_forest"]))
    bad.write_text(json.dumps({"n_estimators": -5}))
    out = tmp_path / "rf"
    argv = ["train", "--model", "random_forest", "--data", str(tiny_data), "--out", str(out), "--quiet"]
    assert main([*argv, "--config", str(cfg)]) == 0
    first = (out / "full" / "model_card.json").read_text()
    assert main([*argv, "--config", str(bad)]) == 2                    # fails inside training
    assert "n_estimators" in capsys.readouterr().err
    assert (out / "full" / "model_card.json").read_text() == first
    assert sorted(p.name for p in out.iterdir()) == ["full"]          # no staging folder left
    assert main([*argv, "--config", str(cfg), "--seed", "7"]) == 0
    assert f"the model it replaced is kept in {out / 'full.previous'}" in capsys.readouterr().out
    assert (out / "full.previous" / "model_card.json").read_text() == first
    assert (out / "full" / "model_card.json").read_text() != first
    read_verified(out / "full"), read_verified(out / "full.previous")     # both whole


def test_cli_train_with_an_augment_file_records_it_in_the_calibration(tmp_path, tiny_data):
    cfg, aug = tmp_path / "cfg.json", tmp_path / "aug.json"
    cfg.write_text(json.dumps(TINY["random_forest"]))
    aug.write_text(json.dumps({"clean_fraction": 0.5}))
    assert main(["train", "--model", "random_forest", "--data", str(tiny_data), "--config", str(cfg),
                 "--out", str(tmp_path / "rf"), "--augment", str(aug), "--quiet"]) == 0
    card, _ = read_verified(tmp_path / "rf" / "full")
    assert "(clean_fraction 0.5)" in card.calibration["fitted_on"]


@pytest.mark.parametrize("config, match", [
    ({"steps": "x"}, "cnn_flax configuration: steps: Input should be a valid integer"),
    ({"stepz": 5}, "stepz: Extra inputs are not permitted (got 5)"),
    ({"schedule": "linear"}, "schedule: Input should be 'constant' or 'cosine' (got 'linear')"),
    ({"select": "f1"}, "select: Input should be 'accuracy' or 'balanced_accuracy'"),
    ({"dropout": 1.5}, "dropout: Input should be less than 1 (got 1.5)"),
    ({"name": "huge"}, "unknown cnn_flax configuration 'huge'"),
])
def test_cli_train_cnn_refuses_a_bad_configuration_before_training(tmp_path, tiny_data, capsys, config, match):
    """A typo'd key used to be ignored (training ran with the default) and a value of the wrong type
    failed mid-run as an internal error."""
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(config))
    assert main(["train", "--model", "cnn_flax", "--data", str(tiny_data), "--config", str(cfg),
                 "--out", str(tmp_path / "cnn"), "--quiet"]) == 2
    assert match in capsys.readouterr().err and not (tmp_path / "cnn").exists()


@pytest.mark.parametrize("augment, match", [("sometimes", "expected lab, none or a JSON file"),
                                            ("bad.json", "line 1: not JSON"),
                                            ("wrong.json", "not augmentation settings"),
                                            ("typo.json", "counts: Input should be a valid tuple (got 'many'); "
                                                          "nosuch: Extra inputs are not permitted (got 1)")])
def test_cli_train_bad_augment(tmp_path, tiny_data, capsys, augment, match, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{fwhm")
    (tmp_path / "wrong.json").write_text(json.dumps({"fwhm": [0.5, 0.1]}))
    (tmp_path / "typo.json").write_text(json.dumps({"counts": "many", "nosuch": 1}))
    assert main(["train", "--model", "random_forest", "--data", str(tiny_data), "--augment", augment,
                 "--out", str(tmp_path / "rf"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert match in err and "errors.pydantic.dev" not in err


def test_no_augmentation_gives_the_plain_profiles(tmp_path, tiny_data):
    req = TrainRequest(name="x", version="0", feature="profile", dataset="full", data=tiny_data,
                       out_dir=tmp_path, progress=False)
    rset = req.reflections("train")
    from crystalmela.simulation.augment import AugmentSettings
    from crystalmela.dataset.store import render_batch
    assert np.array_equal(req.render(rset, [0, 1]), render_batch(rset, [0, 1]))
    req.augment = AugmentSettings()
    a = req.render(rset, [0, 1, 2, 3])
    assert np.array_equal(a, req.render(rset, [0, 1, 2, 3]))          # a row renders the same each time
    assert np.array_equal(req.render(rset, [0, 1, 2, 3], augment=False), render_batch(rset, [0, 1, 2, 3]))
    assert req.inputs(rset, [0, 1]).shape == (2, req.grid.n_points)


def test_ensemble_temperature_is_tied_to_the_exact_models(tmp_path, tiny_data, monkeypatch):
    from crystalmela.training import calibration
    reg = get_registry()
    for name in MODELS:
        spec = reg.classifier(name)
        req = TrainRequest.of(spec, "full", tiny_data, tmp_path / name, config=dict(TINY[name]), progress=False)
        spec.train(req)
        reg.use_model(name, "full", spec.load_dir(tmp_path / name))
    rec = calibration.fit_ensemble("full", tiny_data, n=30, out=tmp_path / "ens")
    assert set(rec["models"]) == set(MODELS) and rec["temperature"] > 0 and rec["n"] > 0
    assert set(rec["weights"]) == set(MODELS) and sum(rec["weights"].values()) == pytest.approx(4, abs=1e-3)
    assert 0.0 <= rec["accuracy_crossfit"] <= 1.0
    monkeypatch.setattr(reg, "ensemble_dirs", [tmp_path / "ens"])
    pred = predict(EXAMPLE)
    if rec["temperature"] != 1.0:
        assert pred.temperatures["ensemble"] == pytest.approx(rec["temperature"])
    # the fitted weights are the ones combined, and said so
    raw = predict(EXAMPLE, calibrate=False)
    pooled = combine_rows({m: np.array([[raw.per_model[m][c] for c in CRYSTAL_SYSTEMS]]) for m in MODELS},
                          weights=rec["weights"])[0]
    assert [raw.ensemble[c] for c in CRYSTAL_SYSTEMS] == pytest.approx(pooled.tolist(), abs=2e-6)
    assert any(n.startswith("ensemble weights fitted") for n in pred.notes)
    chosen = predict(EXAMPLE, weights={"cnn_flax": 2})
    assert "ensemble" not in chosen.temperatures
    assert not any(n.startswith("ensemble weights fitted") for n in chosen.notes)
    # a subset keeps the fitted weights, renormalised over it (said), without the whole set's temperature
    pair = ["cnn_flax", "lattice_fit"]
    sub = predict(EXAMPLE, models=pair)
    assert "ensemble" not in sub.temperatures
    total = rec["weights"]["cnn_flax"] + rec["weights"]["lattice_fit"]
    assert any("renormalised over the models that answered: "
               f"cnn_flax {rec['weights']['cnn_flax'] / total:.2f}" in n for n in sub.notes)
    pooled = combine_rows({m: np.array([[sub.per_model[m][c] for c in CRYSTAL_SYSTEMS]]) for m in pair},
                          weights={m: rec["weights"][m] for m in pair})[0]
    assert [sub.ensemble[c] for c in CRYSTAL_SYSTEMS] == pytest.approx(pooled.tolist(), abs=2e-6)
    assert "ensemble" not in predict(EXAMPLE, calibrate=False).temperatures
    # a damaged record (negative or missing weights) is ignored, not a traceback
    for bad in ({**rec["weights"], "cnn_flax": -1.0}, {"cnn_flax": 1.0}, "heavy"):
        (tmp_path / "ens" / "full.json").write_text(json.dumps({**rec, "weights": bad}))
        damaged = predict(EXAMPLE)
        assert "ensemble" not in damaged.temperatures and not damaged.errors
    (tmp_path / "ens" / "full.json").write_text(json.dumps(rec))
    # other weights than those it was fitted for: not applied
    other = json.loads((tmp_path / "ens" / "full.json").read_text())
    other["models"]["cnn_flax"] = "0" * 64
    (tmp_path / "ens" / "full.json").write_text(json.dumps(other))
    assert "ensemble" not in predict(EXAMPLE).temperatures


# ------------------------------------------------------------------------------ shipped models

def _shipped():
    reg = get_registry()
    return [(name, ds) for name in MODELS for ds in DATASETS
            if (Path(reg.classifier(name).model_root) / ds / "model_card.json").exists()]


def test_every_model_ships_for_every_data_set_within_budget():
    """The issue's budget is 50 MB for the paper's nine; lattice_fit's three fit inside it too."""
    reg = get_registry()
    shipped = _shipped()
    assert len(shipped) == len(MODELS) * len(DATASETS), f"shipped: {shipped}"
    size = {(n, ds): read_verified(Path(reg.classifier(n).model_root) / ds)[1].stat().st_size
            for n, ds in shipped}
    assert sum(v for (n, _), v in size.items() if n in PAPER_MODELS) <= 50e6
    assert sum(size.values()) <= 50e6, f"{sum(size.values()) / 1e6:.1f} MB"


def test_every_shipped_card_names_the_feature_version_it_was_trained_on():
    """So a change to a feature extractor that bumps its version, without retraining, fails here
    (and the core refuses the model) instead of feeding shipped models features they never saw."""
    reg = get_registry()
    for name, ds in _shipped():
        card, _ = read_verified(Path(reg.classifier(name).model_root) / ds)
        assert card.feature_version == reg.feature(card.feature).version, (name, ds)


@pytest.mark.parametrize("dataset", DATASETS)
def test_shipped_models_predict_the_example(dataset):
    pred = predict(str(EXAMPLE), dataset=dataset)
    assert not pred.errors, pred.errors
    assert set(pred.per_model) == set(MODELS)
    for probs in [*pred.per_model.values(), pred.ensemble]:
        assert set(probs) == set(CRYSTAL_SYSTEMS)
        assert abs(sum(probs.values()) - 1) < 1e-6


def _merge_many(args):
    from crystalmela.training.request import _merge_into_cache
    cache, tag = args
    for i in range(15):
        _merge_into_cache(Path(cache), np.array([f"{tag}{i}"]), np.full((1, 3), i, np.float32))
    return tag


def test_features_computed_in_two_processes_equal_the_serial_ones(tmp_path, tiny_data, monkeypatch):
    """``workers=2`` splits the rows into chunks rendered apart, and the cache is identical;
    the processes are spawned and find the extractor through the entry points, as any plugin."""
    import shutil
    from crystalmela.training import request as training
    monkeypatch.setattr(training, "EXTRACT_BATCH", 16)      # several batches and chunks from 160 rows
    spec = get_registry().classifier("extra_trees")
    X = {}
    for workers in (1, 2):
        data = tmp_path / f"w{workers}"
        shutil.copytree(tiny_data, data, ignore=shutil.ignore_patterns("features"))
        req = TrainRequest.of(spec, "full", data, tmp_path, augment=AugmentSettings(),
                           progress=False, workers=workers)
        X[workers], y = req.features("train")
    assert len(y) > 3 * 16 and X[1].shape == X[2].shape
    np.testing.assert_array_equal(X[1], X[2])


def test_a_killed_feature_run_keeps_its_finished_blocks_and_a_rerun_resumes(tmp_path, tiny_data, monkeypatch):
    """The cache is written every ``CACHE_EVERY`` rows: a run that dies part-way leaves the blocks it
    finished, the rerun computes only the others, and the features equal an uninterrupted run's."""
    import shutil
    from crystalmela.training import request as training
    from crystalmela.plugin_api.specs import FeatureExtractor
    monkeypatch.setattr(training, "CACHE_EVERY", 40)
    reg = get_registry()
    spec = reg.classifier("extra_trees")
    real = reg.feature(spec.feature)

    def request(data):
        return TrainRequest.of(spec, "full", data, tmp_path, progress=False)
    whole = tmp_path / "whole"
    shutil.copytree(tiny_data, whole, ignore=shutil.ignore_patterns("features"))
    X_whole, y = request(whole).features("train")
    assert len(y) > 2 * 40

    data = tmp_path / "killed"
    shutil.copytree(tiny_data, data, ignore=shutil.ignore_patterns("features"))
    calls = []

    def dies_in_the_second_block(pattern):
        calls.append(1)
        if len(calls) > 40 + 5:
            raise KeyboardInterrupt
        return real.extract(pattern)
    monkeypatch.setitem(reg.features, spec.feature, FeatureExtractor(real.name, real.version, dies_in_the_second_block))
    with pytest.raises(KeyboardInterrupt):
        request(data).features("train")
    cache = next((data / "features").glob("*.npz"))
    with np.load(cache) as z:
        assert len(z["ids"]) == 40                              # the first block, and nothing half-done

    counted = []

    def counts(pattern):
        counted.append(1)
        return real.extract(pattern)
    monkeypatch.setitem(reg.features, spec.feature, FeatureExtractor(real.name, real.version, counts))
    X, y2 = request(data).features("train")
    assert len(counted) == len(y) - 40
    np.testing.assert_array_equal(X, X_whole)
    np.testing.assert_array_equal(y2, y)


def test_a_feature_cache_written_by_other_code_is_refused(tmp_path, tiny_data, monkeypatch):
    """A cache is found by the extractor's name and version; its check-pattern features tell one
    written by other code under the same version, which training then refuses instead of using. A
    cache written before the check existed is read as it is."""
    import shutil
    from crystalmela.training import request as training
    from crystalmela.plugin_api.errors import CrystalmelaError
    from crystalmela.plugin_api.specs import FeatureExtractor
    data = tmp_path / "ds"
    shutil.copytree(tiny_data, data, ignore=shutil.ignore_patterns("features"))
    reg = get_registry()
    real = reg.feature("suzuki_inv_d2")
    req = TrainRequest(name="extra_trees", version="-", feature=real.name, dataset="full", data=data,
                       out_dir=tmp_path, progress=False)
    X, _ = req.features("val")
    cache = next((data / "features").glob("*.npz"))
    with np.load(cache) as z:
        np.testing.assert_array_equal(z["probe"], req.probe())
    np.testing.assert_array_equal(req.features("val")[0], X)             # the same code reads it back

    monkeypatch.setitem(reg.features, real.name,
                        FeatureExtractor(real.name, real.version, lambda p: np.asarray(real.extract(p)) * 2))
    monkeypatch.setattr(training, "_PROBES", {})
    with pytest.raises(CrystalmelaError, match="written by other suzuki_inv_d2 code") as exc:
        req.features("val")
    assert str(cache) in str(exc.value) and "Delete the file" in str(exc.value)
    with pytest.raises(CrystalmelaError, match="written by other"):
        req.cached_features(["x"])
    from crystalmela.cli.main import main
    assert main(["train", "--model", "extra_trees", "--data", str(data), "--out", str(tmp_path / "m"),
                 "--quiet", "--no-calibration"]) == 2

    with np.load(cache) as z:                                            # a cache from before the check
        np.savez(cache, ids=z["ids"], X=z["X"])
    np.testing.assert_array_equal(req.features("val")[0], X)


def test_an_extractor_that_cannot_take_the_check_pattern_still_trains(tmp_path, tiny_data, monkeypatch):
    """The check pattern is the core's idea, not the plugin's: an extractor that raises on it gets a
    cache without a check, and its training runs as before."""
    import shutil
    from crystalmela.training import request as training
    from crystalmela.plugin_api.specs import FeatureExtractor
    data = tmp_path / "ds"
    shutil.copytree(tiny_data, data, ignore=shutil.ignore_patterns("features"))
    reg = get_registry()
    real = reg.feature("suzuki_inv_d2")
    from crystalmela.plugin_api.pattern import PAPER_GRID
    probe_y = training._probe_pattern(PAPER_GRID, training.NO_PREPROCESS).y

    def picky(pattern):
        if np.array_equal(pattern.y, probe_y):
            raise ValueError("not a pattern this extractor takes")
        return real.extract(pattern)
    monkeypatch.setitem(reg.features, real.name, FeatureExtractor(real.name, real.version, picky))
    monkeypatch.setattr(training, "_PROBES", {})
    req = TrainRequest(name="extra_trees", version="-", feature=real.name, dataset="full", data=data,
                       out_dir=tmp_path, progress=False)
    X, y = req.features("val")
    assert len(X) == len(y) > 0 and req.probe() is None
    with np.load(next((data / "features").glob("*.npz"))) as z:
        assert "probe" not in z.files
    np.testing.assert_array_equal(req.features("val")[0], X)


def test_feature_cache_writers_merge_rows_instead_of_overwriting(tmp_path):
    """Two processes adding rows to one cache at once (full/organic/inorganic trained side by side):
    every row of both ends up in the file, none is lost, no writer trips over the other's temp file;
    a row already there keeps its first value."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from crystalmela.training.request import _merge_into_cache
    cache = tmp_path / "features" / "f-v1.npz"
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:  # JAX: no fork
        assert sorted(pool.map(_merge_many, [(str(cache), "a"), (str(cache), "b")])) == ["a", "b"]
    with np.load(cache) as z:
        assert sorted(z["ids"].tolist()) == sorted(f"{t}{i}" for t in "ab" for i in range(15))
    store = _merge_into_cache(cache, np.array(["a3", "new"]), np.full((2, 3), -1, np.float32))
    rows = dict(zip(store["ids"].tolist(), store["X"][:, 0].tolist()))
    assert rows["a3"] == 3 and rows["new"] == -1 and len(rows) == 31
    assert not list(cache.parent.glob("*.tmp.npz"))


def test_fitting_the_ensemble_reuses_the_val_features_training_cached(tmp_path, tiny_data, monkeypatch):
    """The ensemble is fitted on the val rows `train --max-val n` drew, read from the feature cache."""
    import shutil
    from crystalmela.training import calibration
    from crystalmela.plugin_api.specs import FeatureExtractor
    data = tmp_path / "ds"
    shutil.copytree(tiny_data, data, ignore=shutil.ignore_patterns("features"))  # other tests' caches
    reg = get_registry()
    spec = reg.classifier("extra_trees")
    n_val = len(TrainRequest.of(spec, "full", data, tmp_path).reflections("val"))
    n = n_val // 2
    assert n >= 4     # a real draw: half the val rows, so other rows would miss the cache
    req = TrainRequest.of(spec, "full", data, tmp_path / "full", max_val=n,
                       config=dict(TINY["extra_trees"]), progress=False)
    spec.train(req)
    real = reg.feature(spec.feature)

    def refuse(pattern):
        raise AssertionError("features computed again")
    monkeypatch.setitem(reg.features, spec.feature, FeatureExtractor(real.name, real.version, refuse))
    probs, y, _ = calibration.val_probabilities("full", data, n=n)
    assert len(y) == n and all(p.shape == (n, 7) for p in probs.values())
    assert np.array_equal(y, req.reflections("val").labels)
    with pytest.raises(AssertionError, match="features computed again"):    # other rows: computed
        calibration.val_probabilities("full", data, n=n, seed=1)


def test_calibrating_a_trained_model_reuses_its_cached_val_features(tmp_path, tiny_data, monkeypatch):
    """Training caches the val features; calibration right after must not compute them again."""
    import shutil
    from crystalmela.training.calibration import calibrate_trained
    from crystalmela.plugin_api.specs import FeatureExtractor
    data = tmp_path / "ds"
    shutil.copytree(tiny_data, data)
    reg = get_registry()
    spec = reg.classifier("extra_trees")
    req = TrainRequest.of(spec, "full", data, tmp_path / "full", config=dict(TINY["extra_trees"]), progress=False)
    spec.train(req)
    first = calibrate_trained(spec, req)
    real = reg.feature(spec.feature)

    def refuse(pattern):
        raise AssertionError("features computed again")
    monkeypatch.setitem(reg.features, spec.feature, FeatureExtractor(real.name, real.version, refuse))
    again = calibrate_trained(spec, req)
    assert again["temperature"] == first["temperature"] and again["n"] == first["n"] > 0
    for cache in (data / "features").glob("*.npz"):   # no cache: the patterns are rendered again
        cache.unlink()
    with pytest.raises(AssertionError, match="features computed again"):
        calibrate_trained(spec, req)


def test_calibrate_keeps_the_fit_it_replaces(tmp_path, monkeypatch):
    """A new fit replaces the file predict reads, whole (written aside, then renamed), and the one
    it replaces is kept beside it: a fit on a handful of patterns must not silently erase the
    shipped one. A folder it cannot write to is a one-line error."""
    from crystalmela.training import calibration
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 80)

    def fake_val(dataset, data, **_):
        probs = {}
        for m in ("a", "b"):
            p = rng.dirichlet(np.ones(7), len(y))
            p[np.arange(len(y)), y] += rng.uniform(0, 1, len(y))
            probs[m] = p / p.sum(axis=1, keepdims=True)
        return probs, y, {"a": "1" * 64, "b": "2" * 64}

    monkeypatch.setattr(calibration, "val_probabilities", fake_val)
    out = tmp_path / "ens"
    first = calibration.fit_ensemble("full", tmp_path, out=out)
    assert first["path"] == str(out / "full.json") and first["previous"] is None
    written = (out / "full.json").read_text()
    second = calibration.fit_ensemble("full", tmp_path, out=out)
    assert second["previous"] == str(out / "full.previous.json")
    assert (out / "full.previous.json").read_text() == written != (out / "full.json").read_text()
    assert "path" not in json.loads((out / "full.json").read_text())      # the record, not the return
    assert sorted(p.name for p in out.iterdir()) == ["full.json", "full.previous.json"]
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    with pytest.raises(CrystalmelaError, match="cannot write the ensemble's fit.*give --out"):
        calibration.fit_ensemble("full", tmp_path, out=blocked)


def test_ensemble_fits_are_read_first_from_the_folder_the_environment_names(tmp_path, monkeypatch):
    """CRYSTALMELA_ENSEMBLES: where calibrate writes and predict looks first (a package installed
    read-only, or a candidate's fits); a fit there for other models does not hide a plugin's."""
    from types import SimpleNamespace

    from crystalmela.training import calibration
    models = {m: SimpleNamespace(card=SimpleNamespace(sha256=c * 64)) for m, c in (("a", "1"), ("b", "2"))}
    shas = {m: c * 64 for m, c in (("a", "1"), ("b", "2"))}
    core, mine = tmp_path / "core", tmp_path / "mine"
    for folder, t, fitted_for in ((core, 0.8, shas), (mine, 0.6, {**shas, "b": "9" * 64})):
        folder.mkdir()
        (folder / "full.json").write_text(json.dumps({"models": fitted_for, "temperature": t,
                                                      "weights": {"a": 1.5, "b": 0.5}}))
    monkeypatch.setattr(get_registry(), "ensemble_dirs", [core])
    monkeypatch.setenv("CRYSTALMELA_ENSEMBLES", str(mine))
    assert ensemble.ensemble_folders() == [mine, core]
    assert ensemble.ensemble_defaults(models, "full") == ({"a": 1.5, "b": 0.5}, 0.8)   # mine: other models
    (mine / "full.json").write_text(json.dumps({"models": shas, "temperature": 0.6, "weights": "default"}))
    assert ensemble.ensemble_defaults(models, "full") == (None, 0.6)                    # mine wins
    monkeypatch.delenv("CRYSTALMELA_ENSEMBLES")
    assert ensemble.ensemble_defaults(models, "full") == ({"a": 1.5, "b": 0.5}, 0.8)
    # calibrate writes to the environment's folder, not the core's
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 40)
    monkeypatch.setattr(calibration, "val_probabilities",
                        lambda *a, **k: ({m: rng.dirichlet(np.ones(7), 40) for m in "ab"}, y, shas))
    monkeypatch.setenv("CRYSTALMELA_ENSEMBLES", str(tmp_path / "new"))
    rec = calibration.fit_ensemble("organic", tmp_path)
    assert rec["path"] == str(tmp_path / "new" / "organic.json") and not (core / "organic.json").exists()
    # without it, to the first folder a plugin offers; with none offered, a one-line error
    monkeypatch.delenv("CRYSTALMELA_ENSEMBLES")
    assert calibration.fit_ensemble("organic", tmp_path)["path"] == str(core / "organic.json")
    monkeypatch.setattr(get_registry(), "ensemble_dirs", [])
    with pytest.raises(CrystalmelaError, match="no plugin offers one.*give --out or set CRYSTALMELA_ENSEMBLES"):
        calibration.fit_ensemble("organic", tmp_path)


def test_cli_calibrate_says_where_it_wrote_and_warns_on_few_patterns(tmp_path, tiny_data, capsys):
    out = tmp_path / "ens"
    assert main(["calibrate", "--data", str(tiny_data), "--dataset", "full", "--n", "5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "note: 5 patterns are few for a fit" in text and f"written to {out / 'full.json'}" in text
    assert "kept as" not in text and (out / "full.json").exists()


def test_calibrate_refuses_what_it_cannot_fit_on(tmp_path, tiny_data, capsys):
    """No val patterns to fit on, or no data set: a one-line error and exit 2, nothing written."""
    out = tmp_path / "ens"
    assert main(["calibrate", "--data", str(tiny_data), "--dataset", "full", "--n", "0", "--out", str(out)]) == 2
    assert "--n 0: give the number of val patterns to fit on" in capsys.readouterr().err
    assert main(["calibrate", "--data", str(tmp_path), "--out", str(out)]) == 2
    assert "not a built data set" in capsys.readouterr().err
    organic_only = tmp_path / "organic_only"
    build(organic_only, BuildSettings(synthetic=20, chunk_size=20, seed=3, organic_fraction=1.0),
          workers=1, progress=False)
    assert main(["calibrate", "--data", str(organic_only), "--dataset", "inorganic", "--n", "5",
                 "--out", str(out)]) == 2
    assert "no structures in data set 'inorganic', split 'val'" in capsys.readouterr().err
    assert not out.exists()
