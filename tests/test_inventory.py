"""`crystalmela models`: the installed models as their cards describe them, and the ones that fail."""
import json
from pathlib import Path

import numpy as np
import pytest

import crystalmela as cm
from crystalmela import plugins
from crystalmela.cli.main import main
from crystalmela.inventory import describe_build, inventory
from crystalmela.plugin_api.modelcard import read_verified, write_card
from crystalmela.plugin_api.systems import DATASETS

SHIPPED = ("cnn_flax", "extra_trees", "lattice_fit", "random_forest")


def test_lists_every_shipped_model_as_its_card_says(capsys):
    assert main(["models", "--json"]) == 0
    inv = json.loads(capsys.readouterr().out)
    got = {(m["model"], m["dataset"]): m for m in inv["models"]}
    assert set(got) == {(n, d) for n in SHIPPED for d in DATASETS}
    reg = cm.get_registry()
    for (name, dataset), m in got.items():
        assert m["loaded"] and m["problem"] is None
        card, weights = read_verified(Path(reg.classifier(name).model_root) / dataset)
        assert (m["sha256"], m["size_bytes"], m["weights"]) == (card.sha256, card.size_bytes, weights.name)
        assert m["val"]["top1"] == card.metrics["val"]["accuracy"]
        assert m["val_clean"]["top2"] == card.metrics["val_clean"]["top2_accuracy"]
        assert m["train_rows"] == card.metrics["train_size"]
        assert m["temperature"] == card.calibration["temperature"]
        assert m["trained_on"].startswith(Path(card.data["path"]).name)
    (fits,) = reg.ensemble_dirs
    for ens in inv["ensembles"]:
        record = json.loads((fits / f"{ens['dataset']}.json").read_text())
        assert ens["weights"] == record["weights"] and ens["temperature"] == record["temperature"]
        for name, w in record["weights"].items():
            assert got[(name, ens["dataset"])]["ensemble_weight"] == w


def test_text_names_each_model_its_data_and_scores(capsys):
    assert main(["models", "--dataset", "full"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("data set full\n  ensemble: weights cnn_flax")
    assert "organic" not in out.split("\n", 1)[0] and "data set organic" not in out
    for name in SHIPPED:
        assert f"\n  {name} " in out
    assert "trained on 15,999 training rows of exact-20k (20,000 synthetic crystals" in out
    assert "space groups drawn exactly" in out and "space groups redrawn" in out


def test_models_that_cannot_load_are_listed_with_why(toy, capsys):
    assert main(["models", "--dataset", "organic", "--json"]) == 1
    rows = {m["model"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert "toy_b" not in rows                      # offers no organic model
    assert not rows["toy_broken"]["loaded"]
    assert rows["toy_broken"]["problem"] == "failed: RuntimeError: weights corrupted"
    assert rows["toy_a"]["loaded"] and rows["toy_a"]["problem"].startswith("no model card")
    assert all(rows[n]["loaded"] for n in SHIPPED)   # the others are still listed
    main(["models", "--dataset", "organic"])
    out = capsys.readouterr().out
    assert "toy_broken 1  [toy]  NOT AVAILABLE: failed: RuntimeError: weights corrupted" in out
    # the shipped fit is for the shipped four only: with toy_a loaded too, predict's default set
    # gets equal weights, and the listing says so
    assert "equal weights (no fit for exactly these models)" in out


class _CardedPlugin:
    """A classifier whose weights no longer match its card."""

    def __init__(self, folder):
        self.folder = folder

    @cm.hookimpl
    def crystalmela_classifiers(self):
        def load(dataset):
            read_verified(self.folder)
            raise AssertionError("unreachable: the hash check refuses it")
        return [cm.ClassifierSpec("carded", "1", feature="profile", load=load, datasets=("full",))]


def test_a_replaced_weights_file_is_named(tmp_path, capsys):
    (tmp_path / "w.npz").write_bytes(b"weights")
    write_card(tmp_path, weights="w.npz", model="carded", model_version="1", dataset="full", feature="profile")
    (tmp_path / "w.npz").write_bytes(b"other weights")
    name = plugins.register(_CardedPlugin(tmp_path), "carded_plugin")
    try:
        assert main(["models", "--dataset", "full"]) == 1
    finally:
        plugins.unregister(name)
    out = capsys.readouterr().out
    assert f"carded 1  [carded_plugin]  NOT AVAILABLE: {tmp_path / 'w.npz'}: sha256" in out
    assert "does not match the model card" in out


class _OddCardPlugin:
    """A third-party model whose card holds figures of the wrong kinds."""

    @cm.hookimpl
    def crystalmela_classifiers(self):
        from crystalmela.plugin_api.modelcard import ModelCard

        class Model:
            card = ModelCard(model="odd", model_version="1", dataset="full", classes=list(cm.CRYSTAL_SYSTEMS),
                             weights="w.bin", sha256="0" * 64, size_bytes=7, feature="profile",
                             data={"path": 3, "build_settings": {"synthetic": "lots", "cif_dirs": "a"}},
                             metrics={"val": {"accuracy": "high", "n": 3.5, "top2_accuracy": True},
                                      "val_clean": [0.9], "train_size": True},
                             calibration={"temperature": "cold"})

            def predict_proba(self, X):
                return np.full((len(X), 7), 1 / 7)
        return [cm.ClassifierSpec("odd", "1", feature="profile", load=lambda ds: Model(), datasets=("full",))]


def test_odd_card_fields_are_left_out_not_fatal(capsys):
    name = plugins.register(_OddCardPlugin(), "odd_plugin")
    try:
        assert main(["models", "--dataset", "full"]) == 0
    finally:
        plugins.unregister(name)
    out = capsys.readouterr().out
    odd = out[out.index("  odd 1  [odd_plugin]"):]
    assert "features profile\n" in odd and "temperature" not in odd.split("\n")[0]
    assert "trained on 3 (space groups redrawn, cells uniform)" in odd
    assert "val top-1 / top-2, rendered as in training: not recorded; clean: not recorded" in odd


def test_the_ensemble_fit_predict_would_use_is_shown(tmp_path, monkeypatch, capsys):
    """A user's fit (CRYSTALMELA_ENSEMBLES) is read first, as predict reads it; odd fields in it are
    left out."""
    record = json.loads((cm.get_registry().ensemble_dirs[0] / "full.json").read_text())
    record.update(temperature=0.5, fitted_on=["not", "text"], accuracy="high",
                  weights={n: 1.0 for n in record["weights"]})
    (tmp_path / "full.json").write_text(json.dumps(record))
    monkeypatch.setenv("CRYSTALMELA_ENSEMBLES", str(tmp_path))
    assert main(["models", "--dataset", "full", "--json"]) == 0
    (ens,) = json.loads(capsys.readouterr().out)["ensembles"]
    assert ens["record"] == str(tmp_path / "full.json") and ens["temperature"] == 0.5
    assert ens["fitted_on"] is None and ens["val_top1"] is None
    assert set(ens["weights"].values()) == {1.0}


def test_describe_build():
    assert describe_build({}) is None
    # cards written before --sg-draw and --cell-model existed: the generator's old behaviour
    old = {"path": "/x/synthetic-200k", "build_settings": {"synthetic": 200000, "seed": 2026}}
    assert describe_build(old) == ("synthetic-200k (200,000 synthetic crystals, seed 2026, space groups "
                                   "redrawn, cells uniform)")
    cif = {"path": "/x/cod", "build_settings": {"cif_dirs": ["a", "b"], "sg_draw": "exact",
                                                 "cell_model": "reduced", "seed": 0}}
    assert describe_build(cif) == "cod (2 CIF folder(s), seed 0, space groups drawn exactly, cells reduced)"
    assert describe_build({"path": "/x/plain"}) == "plain"


@pytest.mark.parametrize("argv", [["models", "--dataset", "metals"], ["models", "extra"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_unknown_dataset_from_python():
    with pytest.raises(cm.CrystalmelaError, match="unknown data set 'metals'"):
        inventory(("full", "metals"))
