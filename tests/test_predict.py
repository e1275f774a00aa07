"""The pipeline and the CLI's predict command, with throwaway classifier plugins."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import crystalmela as cm
from crystalmela import CRYSTAL_SYSTEMS
from crystalmela.cli.main import main

JSON_KEYS = {"path", "dataset", "per_model", "ensemble", "top1", "top2", "errors", "unsure", "unsure_reasons",
             "notes", "reader", "wavelength", "wavelength_source", "quality",
             "preprocessing", "temperatures", "evidence", "evidence_data"}


def test_predict_runs_every_model_and_isolates_the_broken_one(toy, xy_file):
    pred = cm.predict(xy_file, models=["toy_a", "toy_b", "toy_broken"])
    assert set(pred.per_model) == {"toy_a", "toy_b"}
    assert "weights corrupted" in pred.errors["toy_broken"]
    for probs in [*pred.per_model.values(), pred.ensemble]:
        assert list(probs) == list(CRYSTAL_SYSTEMS) and sum(probs.values()) == pytest.approx(1)
    a, b = (np.array(list(pred.per_model[m].values())) for m in ("toy_a", "toy_b"))
    geo = np.sqrt(np.clip(a, 1e-4, 1) * np.clip(b, 1e-4, 1))     # the core's geometric mean
    assert list(pred.ensemble.values()) == pytest.approx((geo / geo.sum()).tolist())
    ranked = sorted(pred.ensemble, key=pred.ensemble.get, reverse=True)
    assert (pred.top1, pred.top2) == tuple(ranked[:2])
    assert pred.reader == "xy"


def test_weights_change_the_ensemble(toy, xy_file):
    pred = cm.predict(xy_file, models=["toy_a", "toy_b"], weights={"toy_a": 3, "toy_b": 1})
    a, b = (np.array(list(pred.per_model[m].values())) for m in ("toy_a", "toy_b"))
    expect = np.exp((3 * np.log(np.clip(a, 1e-4, 1)) + np.log(np.clip(b, 1e-4, 1))) / 4)
    assert list(pred.ensemble.values()) == pytest.approx((expect / expect.sum()).tolist())
    assert pred.top1 == "trigonal"


def test_model_without_dataset_reports_error(toy, xy_file):
    pred = cm.predict(xy_file, models=["toy_a", "toy_b"], dataset="organic")
    assert "toy_b" in pred.errors and "offers no model for data set 'organic'" in pred.errors["toy_b"]
    assert set(pred.per_model) == {"toy_a"}


@pytest.mark.parametrize("path,msg", [(None, "got NoneType"), (123, "got int"),
                                      (b"10 1\n20 5", "got bytes: for data in memory build a crystalmela.Pattern")])
def test_what_is_not_a_path_is_a_clear_error(toy, path, msg):
    """Was a raw TypeError."""
    with pytest.raises(cm.CrystalmelaError, match=msg):
        cm.predict(path)


def test_preprocess_may_be_given_as_the_cli_takes_it(toy, xy_file):
    assert cm.predict(xy_file, models=["toy_a"], preprocess="ka2").preprocessing["toy_a"].startswith("Kα2 stripped")


@pytest.mark.parametrize("kw,msg", [
    (dict(models=["nope"]), "unknown model 'nope'"),
    (dict(dataset="mof"), "unknown data set 'mof'"),
    (dict(wavelength=1.5, anode="Cu"), "not both"),
    (dict(anode="Xx"), "unknown anode"),
    (dict(wavelength=154.06), "outside 0.1–5"),
    (dict(models=[]), "no model chosen: name at least one of"),            # was an empty answer
    (dict(models=" , "), "no model chosen"),
    (dict(weights={"toy_a": "2"}), "weight of 'toy_a' is '2', not a number"),   # was a TypeError
    (dict(weights={"nope": 1}), "ensemble weight given for 'nope', not among the chosen models"),
    (dict(models=["toy_a"], weights={"toy_b": 1}), r"'toy_b', not among the chosen models \(toy_a\)"),
    (dict(preprocess=3), "preprocess: expected steps such as 'ka2,smooth=9'"),   # every model failed
    (dict(preprocess="ka3"), "preprocessing step 'ka3'"),
    (dict(unsure_below=3), r"unsure_below 3: expected a probability in \[0, 1\]"),   # was accepted
])
def test_bad_arguments(toy, xy_file, kw, msg):
    with pytest.raises(cm.CrystalmelaError, match=msg):
        cm.predict(xy_file, **kw)


def test_models_may_be_one_comma_separated_string(toy, xy_file):
    """As the CLI takes them; a plain string used to be read letter by letter ("unknown model 't'")."""
    assert set(cm.predict(xy_file, models="toy_a").per_model) == {"toy_a"}
    assert set(cm.predict(xy_file, models="toy_a, toy_b").per_model) == {"toy_a", "toy_b"}


def test_anode_sets_wavelength(toy, xy_file):
    pred = cm.predict(xy_file, models=["toy_a"], anode="Mo")
    assert pred.wavelength == pytest.approx(0.7093)
    assert any("0.7093" in n for n in pred.notes)


def test_a_model_without_weights_says_so_instead_of_pretending(xy_file, tmp_path):
    from crystalmela import plugins
    from crystalmela.plugin_api.modelcard import require_model

    class Ghost:
        @cm.hookimpl
        def crystalmela_classifiers(self):
            return [cm.ClassifierSpec("ghost", "1", feature="profile",
                                      load=lambda ds: require_model("ghost", tmp_path, ds))]

    name = plugins.register(Ghost(), "ghost")
    try:
        pred = cm.predict(xy_file, models=["ghost"])
    finally:
        plugins.unregister(name)
    assert pred.per_model == {} and pred.top1 is None
    assert "no trained ghost model" in pred.errors["ghost"]


def test_cli_json_shape_exact_and_bad_file_keeps_going(toy, xy_file, tmp_path, capsys):
    bad = tmp_path / "bad.xy"
    bad.write_text("10 1\n11 abc\n12 3\n")
    code = main(["predict", str(xy_file), str(bad), str(xy_file), "--json", "--models", "toy_a,toy_b"])
    assert code == 2
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    assert set(lines[0]) == JSON_KEYS and lines[0]["path"] == str(xy_file)
    assert lines[0]["top1"] in CRYSTAL_SYSTEMS and set(lines[0]["ensemble"]) == set(CRYSTAL_SYSTEMS)
    assert set(lines[1]) == {"path", "error"} and ":2:" in lines[1]["error"]
    assert lines[2] == lines[0]


def test_cli_table(toy, xy_file, capsys):
    assert main(["predict", str(xy_file), "--models", "toy_a,toy_broken", "--dataset", "full"]) == 0
    out = capsys.readouterr().out
    assert "toy_a" in out and "ensemble" in out and "top-1:" in out and "error [toy_broken]" in out


def test_cli_exit_1_when_no_model_answers(toy, xy_file):
    assert main(["predict", str(xy_file), "--json", "--models", "toy_broken"]) == 1


@pytest.mark.parametrize("weights", ["toy_a=-1", "toy_a=0,toy_b=0", "toy_a=nan", "toy_a=inf"])
def test_cli_bad_weight_values_are_refused_before_predicting(toy, xy_file, capsys, weights):
    assert main(["predict", str(xy_file), "--models", "toy_a,toy_b", "--weights", weights]) == 2
    err = capsys.readouterr().err
    assert "weights must be finite, non-negative and not all zero" in err and "internal error" not in err


def test_cli_weights_parse_error(toy, xy_file, capsys):
    assert main(["predict", str(xy_file), "--weights", "toy_a"]) == 2
    assert "NAME=NUMBER" in capsys.readouterr().err


def test_pattern_outside_every_grid_is_an_input_error(toy, tmp_path):
    p = tmp_path / "high.xy"
    p.write_text("\n".join(f"{x} 5" for x in range(100, 150)))
    with pytest.raises(cm.PatternError, match="outside the models' range"):
        cm.predict(p, models=["toy_a", "toy_b"])


def test_cli_entry_point_installed(tmp_path):
    from pathlib import Path
    script = Path(sys.executable).parent / "crystalmela"  # the console script beside this interpreter
    r = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "crystalmela" in r.stdout


class ExplainingPlugin:
    """A third party's extractor that says what it found, three ways: right, crashing, wrong type.
    The line it writes depends on the pattern it gets, so the test sees which pattern that was."""

    def __init__(self):
        self.seen = {}

    @cm.hookimpl
    def crystalmela_feature_extractors(self):
        def extract(p):
            self.seen["extract"] = p
            return np.array([float(p.y.argmax())])

        def said(p):
            self.seen["explain"] = p
            return [f"strongest point at {p.x[p.y.argmax()]:.2f}°", "second line"]

        def crash(p):
            raise ZeroDivisionError("no peaks to divide by")

        def data(p):                    # lines and the same as numbers
            top = float(p.x[p.y.argmax()])
            return cm.Evidence([f"strongest point at {top:.2f}°"], {"strongest_two_theta": top, "points": [1, 2]})

        def numpy_data(p):              # a NumPy number, which JSON does not take
            return cm.Evidence(["strongest point"], {"strongest_two_theta": p.x.astype(np.float32).max()})
        return [cm.FeatureExtractor("said", "1", extract, explain=said),
                cm.FeatureExtractor("crash", "1", extract, explain=crash),
                cm.FeatureExtractor("text", "1", extract, explain=lambda p: "one string, not lines"),
                cm.FeatureExtractor("data", "1", extract, explain=data),
                cm.FeatureExtractor("numpy", "1", extract, explain=numpy_data)]

    @cm.hookimpl
    def crystalmela_classifiers(self):
        from conftest import ConstModel
        load = lambda ds: ConstModel([0, 0, 0, 0, 2.0, 1.0, 0])  # noqa: E731
        return [cm.ClassifierSpec(f"by_{f}", "1", feature=f, load=load)
                for f in ("said", "crash", "text", "data", "numpy")]


@pytest.fixture
def explaining():
    plugin = ExplainingPlugin()
    name = cm.plugins.register(plugin, "explaining")
    yield plugin
    cm.plugins.unregister(name)


def test_evidence_is_what_the_extractor_said_about_the_pattern_it_got(toy, explaining, xy_file):
    pred = cm.predict(xy_file, models=["by_said", "toy_a"])
    assert explaining.seen["explain"] is explaining.seen["extract"]          # the pattern extract got
    grid = explaining.seen["extract"]
    assert pred.evidence == {"by_said": [f"strongest point at {grid.x[grid.y.argmax()]:.2f}°", "second line"]}
    assert pred.to_json()["evidence"] == pred.evidence
    table = cm.pipeline.result.format_table(pred)
    assert f"  by_said: strongest point at {grid.x[grid.y.argmax()]:.2f}°\n    second line" in table


def test_explain_off_asks_nothing(explaining, xy_file, capsys):
    pred = cm.predict(xy_file, models=["by_said"], explain=False)
    assert pred.evidence == {} and "explain" not in explaining.seen and pred.ok
    assert main(["predict", str(xy_file), "--models", "by_said", "--no-evidence", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["evidence"] == {} and "explain" not in explaining.seen
    assert main(["predict", str(xy_file), "--models", "by_said"]) == 0
    assert "  by_said: strongest point at" in capsys.readouterr().out


@pytest.mark.parametrize("model, note", [
    ("by_crash", "feature extractor crash could not explain what it found: ZeroDivisionError: no peaks"),
    ("by_text", "feature extractor text: explain returned str, expected a list of lines of text or an Evidence"),
    ("by_numpy", "feature extractor numpy could not explain what it found: ValueError: evidence "
                 "data[\"strongest_two_theta\"] is a float32"),
])
def test_a_broken_explain_is_a_note_and_the_answer_stands(explaining, xy_file, model, note):
    pred = cm.predict(xy_file, models=[model])
    assert pred.ok and pred.top1 and pred.errors == {} and pred.evidence == {} and pred.evidence_data == {}
    assert any(note in n for n in pred.notes)


def test_evidence_data_goes_out_beside_the_lines(explaining, xy_file, capsys):
    pred = cm.predict(xy_file, models=["by_data", "by_said"])
    top = float(explaining.seen["extract"].x[explaining.seen["extract"].y.argmax()])
    assert pred.evidence["by_data"] == [f"strongest point at {top:.2f}°"]
    assert pred.evidence_data == {"by_data": {"strongest_two_theta": top, "points": [1, 2]}}   # bare lines: no data
    assert main(["predict", str(xy_file), "--models", "by_data", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["evidence_data"] == {"by_data": {"strongest_two_theta": top, "points": [1, 2]}}
    assert main(["predict", str(xy_file), "--models", "by_data", "--json", "--no-evidence"]) == 0
    assert json.loads(capsys.readouterr().out)["evidence_data"] == {}


@pytest.mark.parametrize("lines, data, message", [
    ("one line", {}, "evidence lines must be a list of strings"),
    (["x", 3], {}, "evidence lines must be a list of strings"),
    (["x"], [1, 2], "evidence data must be a dict, not list"),
    (["x"], {"M": float("nan")}, 'evidence data["M"] is nan, not a finite number'),
    (["x"], {"cells": [{"a": np.int64(3)}]}, 'evidence data["cells"][0]["a"] is a int64'),
    (["x"], {"cells": (1, 2)}, 'evidence data["cells"] is a tuple'),
    (["x"], {1: "a"}, "evidence data has the key 1: keys must be strings"),
])
def test_evidence_holds_only_what_json_carries(lines, data, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cm.Evidence(lines, data)


def test_explain_must_be_callable():
    with pytest.raises(ValueError, match="explain must be callable or None"):
        cm.FeatureExtractor("x", "1", lambda p: np.zeros(1), explain="cells")
