"""The data-quality gate: junk is refused or answered unsure with the reason; patterns pass."""
import json
import re

import numpy as np
import pytest

import crystalmela as cm
from crystalmela.cli.main import main
from crystalmela.pipeline.quality import QualityError, QualitySettings, assess
from crystalmela.plugin_api.pattern import Pattern

EXAMPLE = "examples/LiCoO2.RAW"
X = np.arange(5, 90, 0.02)


@pytest.fixture(scope="module")
def licoo2():
    return cm.read_pattern(EXAMPLE)


def _rng():
    return np.random.default_rng(0)


REFUSED = {
    "3 points": (lambda p: Pattern([10, 20, 30], [1, 5, 2]), "only 3 points"),
    "uniform noise": (lambda p: Pattern(X, _rng().random(X.size) * 1000), "no peak stands above the noise"),
    "counting noise": (lambda p: Pattern(X, _rng().poisson(100, X.size)), "no peak stands above the noise"),
    "a ramp": (lambda p: Pattern(X, X * 10), "the profile has no local maximum"),
    "2θ in radians": (lambda p: Pattern(np.radians(p.x), p.y), r"cover 2\.09° .* radians\?"),
    "all negative": (lambda p: Pattern(p.x, -p.y - 1, negative="offset"), "every intensity is zero or negative"),
    "outside the range": (lambda p: Pattern(X + 90, np.ones(X.size)), "outside the models' range 0–90°"),
    "coarse step": (lambda p: Pattern(p.x[::30], p.y[::30], wavelength=p.wavelength), "step 0.9° is coarser than 0.5°"),
}


@pytest.mark.parametrize("kind", REFUSED)
def test_junk_is_refused_with_the_number_that_failed(kind, licoo2):
    make, msg = REFUSED[kind]
    with pytest.raises(QualityError, match=msg):
        assess(make(licoo2))


def _spiked(p, n):
    y = p.y.copy()
    rng = _rng()
    at = rng.choice(np.arange(100, 2400), n, replace=False)     # 19–88°: within the models' range
    y[at] = y[at] * 2.0 ** rng.integers(8, 20, n) + 1e5      # a high bit of the count flipped
    return Pattern(p.x, y, wavelength=p.wavelength)


UNSURE = {
    "cut to 10 %": (lambda p: Pattern(p.x[:400], p.y[:400], wavelength=p.wavelength), "cover only 16.0–28.0°"),
    "one spike": (lambda p: _spiked(p, 1), "1 one-point spike at 2θ"),
    "ten flipped bits": (lambda p: _spiked(p, 10), "10 one-point spikes"),
    "step 0.15°": (lambda p: Pattern(p.x[::5], p.y[::5], wavelength=p.wavelength), "step 0.15° is coarse"),
    "mostly negative": (lambda p: Pattern(p.x, p.y - np.percentile(p.y, 80), negative="offset",
                                          wavelength=p.wavelength), "80% of the intensities were negative"),
    "one line": (lambda p: Pattern(X, 100 + 900 * np.exp(-((X - 30) / 0.1) ** 2)), "only 1 peak above the noise"),
}


@pytest.mark.parametrize("kind", UNSURE)
def test_doubtful_data_is_answered_unsure_with_the_reason(kind, licoo2):
    make, msg = UNSURE[kind]
    q = assess(make(licoo2))
    assert any(re.search(msg, r) for r in q.unsure), q.unsure


def test_measured_and_simulated_patterns_pass(licoo2):
    q = assess(licoo2)
    assert not q.unsure and q.points == 4001 and q.peaks_above_noise > 20 and q.snr > 100
    from crystalmela.evaluation.holdout import lab_pattern
    from crystalmela.simulation.simulate import simulate
    from crystalmela.simulation.synthetic import generate
    rng = np.random.default_rng(1)
    for crystal in generate(12, "inorganic", seed=3):
        for pattern in (simulate(crystal), lab_pattern(crystal, rng)):      # noise-free and lab-like
            assert assess(pattern).unsure == []


def test_settings_move_the_thresholds(licoo2):
    short = Pattern(licoo2.x[:400], licoo2.y[:400], wavelength=licoo2.wavelength)
    with pytest.raises(QualityError, match="the gate needs 15°"):
        assess(short, settings=QualitySettings(refuse_coverage_below_deg=15))
    assert assess(short, settings=QualitySettings(unsure_coverage_below_deg=5, unsure_peaks_below=1)).unsure == []
    with pytest.raises(ValueError):
        QualitySettings(peak_sigma=0)


def test_the_cli_refuses_in_one_line_with_exit_2(tmp_path, capsys):
    f = tmp_path / "three.xy"
    f.write_text("10 1\n20 5\n30 2\n")
    assert main(["predict", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {f}: refused by the data-quality gate: only 3 points: a powder scan has "
                   "hundreds to thousands (the gate needs at least 50)"]
    assert main(["predict", str(f), "--json"]) == 2
    assert "refused by the data-quality gate" in json.loads(capsys.readouterr().out)["error"]


def test_an_unsure_answer_says_why_in_the_table_and_the_json(tmp_path, capsys, licoo2):
    f = tmp_path / "cut.xy"
    np.savetxt(f, np.column_stack([licoo2.x[:400], licoo2.y[:400]]))
    assert main(["predict", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["unsure"] is True and any("cover only" in r for r in out["unsure_reasons"])
    assert out["reader"] == "xy" and out["wavelength_source"] == "assumed (the models' grid)"
    assert any("wavelength not given" in n for n in out["notes"]) and out["quality"]["points"] == 400
    assert main(["predict", str(f)]) == 0
    assert "UNSURE: read it as" in capsys.readouterr().out


def test_the_gate_can_be_switched_off(tmp_path, capsys):
    f = tmp_path / "three.xy"
    f.write_text("10 1\n20 5\n30 2\n")
    assert main(["predict", str(f), "--no-quality-gate", "--json", "--models", "extra_trees"]) == 0
    assert json.loads(capsys.readouterr().out)["quality"] is None


def test_json_says_where_the_wavelength_came_from(capsys):
    assert main(["predict", EXAMPLE, "--json", "--models", "extra_trees"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["reader"], out["wavelength"], out["wavelength_source"]) == ("bruker_raw", pytest.approx(1.5406), "file")
    assert main(["predict", EXAMPLE, "--json", "--models", "extra_trees", "--anode", "Co"]) == 0
    assert json.loads(capsys.readouterr().out)["wavelength_source"] == "given"


def test_predict_pattern_refuses_what_is_not_a_pattern():
    with pytest.raises(cm.CrystalmelaError, match="needs a Pattern, got ndarray"):
        cm.Predictor(["extra_trees"]).predict_pattern(np.zeros(10))
