"""Each hook, exercised through a throwaway plugin; and every hook documented (meta-test)."""
from pathlib import Path

import numpy as np
import pytest

import crystalmela as cm
from crystalmela import plugins
from crystalmela.plugin_api import hookspecs
from crystalmela.pipeline.reading import read_pattern

DOCS = Path(__file__).parents[1] / "docs" / "plugins.md"
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("crystalmela_"))


class TwoCol:
    @cm.hookimpl
    def crystalmela_readers(self):
        def read(path):
            vals = [float(v) for v in Path(path).read_text().split()]
            return cm.Pattern(vals[0::2], vals[1::2])
        return [cm.ReaderSpec("two", (".two",), read, lambda h, p: 0.9 if h[:1].isdigit() else 0.0)]


def test_hook_crystalmela_readers(tmp_path):
    plugins.register(TwoCol(), "two")
    p = tmp_path / "a.two"
    p.write_text("10 1 11 2 12 3")
    pat = read_pattern(p)
    assert pat.reader == "two" and pat.source == str(p) and pat.y.tolist() == [1, 2, 3]


def test_hook_crystalmela_feature_extractors(toy, xy_file):
    reg = cm.get_registry()
    assert reg.provider[("feature extractor", "toy_npeaks")] == "toy"
    assert reg.feature("toy_npeaks").extract(cm.read_pattern(xy_file).to_grid()).tolist() == [1.0]


def test_hook_crystalmela_classifiers(toy, xy_file):
    reg = cm.get_registry()
    assert reg.provider[("classifier", "toy_a")] == "toy"
    pred = cm.predict(xy_file, models=["toy_a"])
    assert set(pred.per_model) == {"toy_a"}


class Arithmetic:
    @cm.hookimpl
    def crystalmela_combine(self, probabilities, weights, dataset):
        return np.mean([np.asarray(p) for p in probabilities.values()], axis=0)


class Abstain:
    @cm.hookimpl
    def crystalmela_combine(self, probabilities, weights, dataset):
        return None


def test_hook_crystalmela_combine_plugin_replaces_mean(toy, xy_file):
    mean = cm.predict(xy_file, models=["toy_a", "toy_b"]).ensemble
    plugins.register(Abstain(), "abstain")
    assert cm.predict(xy_file, models=["toy_a", "toy_b"]).ensemble == pytest.approx(mean)  # falls through
    plugins.register(Arithmetic(), "arith")
    arith = cm.predict(xy_file, models=["toy_a", "toy_b"])
    assert arith.ensemble != pytest.approx(mean)
    a, b = (np.array(list(arith.per_model[m].values())) for m in ("toy_a", "toy_b"))
    assert list(arith.ensemble.values()) == pytest.approx(((a + b) / 2).tolist(), rel=1e-6)


class Fits:
    def __init__(self, folder):
        self.folder = folder

    @cm.hookimpl
    def crystalmela_ensemble_fits(self):
        return [self.folder, 42]


def test_hook_crystalmela_ensemble_fits(toy, xy_file, tmp_path):
    """A plugin's folder of fits joins the search: its fit for exactly the loaded models sets the
    ensemble's weights and temperature; a fit naming other weights is not used; a path that is not
    one is reported, not fatal. The shipped fits come the same way, from crystalmela-ensemble-fits."""
    import json
    reg = cm.get_registry()
    assert [d.parent.name for d in reg.ensemble_dirs] == ["crystalmela_ensemble_fits"]
    shas = {m: getattr(reg.model(m, "full").card, "sha256", None) for m in ("toy_a", "toy_b")}
    (tmp_path / "full.json").write_text(json.dumps({"models": shas, "temperature": 0.5,
                                                    "weights": {"toy_a": 3.0, "toy_b": 1.0}}))
    plain = cm.predict(xy_file, models=["toy_a", "toy_b"])
    plugins.register(Fits(tmp_path), "fits")
    reg = cm.get_registry()
    assert tmp_path in reg.ensemble_dirs and 42 not in reg.ensemble_dirs
    assert any(f.name == "fits" and "returned int, expected a path" in f.error for f in reg.failures)
    fitted = cm.predict(xy_file, models=["toy_a", "toy_b"])
    assert fitted.temperatures["ensemble"] == 0.5 and plain.temperatures.get("ensemble", 1.0) == 1.0
    assert "ensemble weights fitted on val patterns: toy_a 3.00, toy_b 1.00" in fitted.notes
    (tmp_path / "full.json").write_text(json.dumps({"models": {**shas, "toy_b": "0" * 64},
                                                    "temperature": 0.5, "weights": "default"}))
    assert cm.predict(xy_file, models=["toy_a", "toy_b"]).ensemble == pytest.approx(plain.ensemble)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    assert hook in DOCS.read_text(), f"{hook} missing from docs/plugins.md"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    assert f"def test_hook_{hook}" in Path(__file__).read_text()


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring_with_example(hook):
    doc = getattr(hookspecs, hook).__doc__
    assert doc and "Example::" in doc
