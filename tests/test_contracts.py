"""crystalmela.plugin_api.testing's contract checks, run on every built-in plugin and on the toy one."""
import pytest

import crystalmela as cm
from crystalmela.plugin_api.testing import check_classifier, check_feature_extractor, check_reader
from writers import CASES

READERS = sorted({c[2] for c in CASES.values()})


@pytest.mark.parametrize("name", READERS)
def test_builtin_reader_contract(name, tmp_path):
    good = []
    for case, (writer, fname, reader, _) in CASES.items():
        if reader == name:
            f = tmp_path / f"{case}{fname[1:]}"
            writer(f)
            good.append(f)
    check_reader(cm.get_registry().reader(name), good, tmp_path)


def test_every_builtin_reader_is_covered():
    assert set(cm.get_registry().readers) == set(READERS)


@pytest.fixture
def gridded(xy_file):
    return cm.read_pattern(xy_file).to_grid()


@pytest.mark.parametrize("name", ["profile", "paper_peaks", "suzuki_inv_d2"])
def test_builtin_feature_contract(name, gridded):
    check_feature_extractor(cm.get_registry().feature(name), gridded)


def test_paper_peaks_values(gridded):
    f = cm.get_registry().feature("paper_peaks").extract(gridded)
    assert f.shape == (12,) and f[10] >= 1 and f[11] == pytest.approx(20.0, abs=0.02)


def test_suzuki_features_are_inverse_d_squared(gridded):
    import numpy as np
    f = cm.get_registry().feature("suzuki_inv_d2").extract(gridded)
    d = 1.54056 / (2 * np.sin(np.radians(10.0)))  # the test pattern's one peak, at 2θ = 20°
    assert f.shape == (11,) and f[10] == 1
    assert f[0] == pytest.approx(1 / d ** 2, rel=2e-3) and not f[1:10].any()


@pytest.mark.parametrize("name", ["random_forest", "extra_trees", "cnn_flax", "lattice_fit", "toy_a", "toy_b"])
def test_classifier_contract(name, toy, xy_file):
    reg = cm.get_registry()
    spec = reg.classifier(name)
    check_classifier(spec, reg.feature(spec.feature), cm.read_pattern(xy_file))


def test_contract_check_catches_a_bad_reader(tmp_path):
    def read(path):
        raise KeyError("boom")
    spec = cm.ReaderSpec("bad", (".bad",), read, lambda h, p: 0.5)
    with pytest.raises(AssertionError, match="raised KeyError"):
        check_reader(spec, [], tmp_path)
