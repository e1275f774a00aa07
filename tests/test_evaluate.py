"""Evaluation: metrics agree with scikit-learn, folds are honest, labels files fail clearly, and a
report is built end to end (cross-validation and labelled patterns, Python API and CLI)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import (balanced_accuracy_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support, top_k_accuracy_score)

from crystalmela.cli.main import main
from crystalmela.dataset import BuildSettings, build
from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.evaluation import cross_validate, evaluate_patterns, read_labels, write_report
from crystalmela.evaluation.crossval import BASELINES, baseline_probabilities, fold_rows
from crystalmela.evaluation.patterns import LabelsError
from crystalmela.evaluation.metrics import (classification_metrics, mean_std, paired_test, rate_interval,
                                 reliability)
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

REQUIRED = {"accuracy", "top2_accuracy", "balanced_accuracy", "f1_weighted", "confusion_matrix"}
TINY = {"random_forest": {"n_estimators": 5, "min_samples_leaf": 2},
        "extra_trees": {"n_estimators": 5, "min_samples_leaf": 2},
        "cnn_flax": {"steps": 6, "eval_every": 3, "batch": 16, "val_size": 20}}


def _random_case(n=500, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.choice(7, n, p=[.2, .4, .2, .05, .05, .05, .05])
    proba = rng.dirichlet(np.ones(7), n)
    proba[np.arange(n), y] += rng.uniform(0, 0.6, n)       # somewhat informative
    return y, proba / proba.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_sklearn(seed):
    y, proba = _random_case(seed=seed)
    pred = proba.argmax(1)
    m = classification_metrics(y, proba, per_class=True)
    assert m["accuracy"] == pytest.approx((pred == y).mean())
    assert m["top2_accuracy"] == pytest.approx(top_k_accuracy_score(y, proba, k=2, labels=range(7)))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["f1_weighted"] == pytest.approx(f1_score(y, pred, average="weighted"))
    assert m["confusion_matrix"] == confusion_matrix(y, pred, labels=range(7)).tolist()
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=range(7), zero_division=0)
    assert [m["per_class"][c]["recall"] for c in CRYSTAL_SYSTEMS] == pytest.approx(r)
    assert [m["per_class"][c]["support"] for c in CRYSTAL_SYSTEMS] == s.tolist()


def _wilson(k, n, z=1.959963984540054):
    """The Wilson score interval written out, to check the library call against."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k, n", [(247, 266), (221, 266), (0, 10), (10, 10), (1, 1)])
def test_rate_interval_is_wilson_and_holds_the_rate(k, n):
    lo, hi = rate_interval(k, n)
    assert (lo, hi) == pytest.approx(_wilson(k, n), abs=1e-9)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert rate_interval(k, n, 0.99)[0] <= lo     # wider at higher confidence


@pytest.mark.parametrize("k, n", [(-1, 10), (11, 10), (0, 0)])
def test_rate_interval_refuses_impossible_counts(k, n):
    with pytest.raises(ValueError, match="0 ≤ k ≤ n"):
        rate_interval(k, n)


def test_paired_test_counts_only_disagreements():
    a = np.array([True] * 6 + [True] * 50 + [False] * 10)
    b = np.array([False] * 6 + [True] * 50 + [False] * 10)
    r = paired_test(a, b)
    assert (r["only_a"], r["only_b"]) == (6, 0)
    assert r["p_value"] == pytest.approx(2 * 0.5 ** 6)            # exact two-sided binomial
    assert paired_test(b, a)["p_value"] == pytest.approx(r["p_value"])
    assert paired_test(a, a) == {"only_a": 0, "only_b": 0, "p_value": 1.0}
    assert paired_test([True, False], [False, True])["p_value"] == pytest.approx(1.0)


def test_paired_test_refuses_unpaired_vectors():
    with pytest.raises(ValueError, match="equal-length"):
        paired_test([True, False], [True])


def test_known_small_case_and_calibration():
    y = np.array([0, 1, 1, 2])
    proba = np.zeros((4, 7))
    proba[0, [0, 1]] = [0.9, 0.1]     # right, confident
    proba[1, [0, 1]] = [0.6, 0.4]     # wrong, right answer second
    proba[2, [1, 2]] = [0.7, 0.3]     # right
    proba[3, [0, 1]] = [0.9, 0.1]     # wrong, not in top-2
    m = classification_metrics(y, proba)
    assert (m["accuracy"], m["top2_accuracy"]) == (0.5, 0.75)
    rel = reliability(y, proba, bins=10)
    # bins: 0.6 -> acc 0 ; 0.7 -> acc 1 ; 0.9 (two) -> acc 0.5
    assert rel["ece"] == pytest.approx((0.6 + 0.3 + 2 * 0.4) / 4)
    assert sum(rel["count"]) == 4 and rel["accuracy"][0] is None
    with pytest.raises(ValueError, match="probabilities"):
        classification_metrics(y, proba[:, :5])


@pytest.mark.filterwarnings("error")
def test_metrics_of_a_set_holding_one_system():
    """Two monoclinic patterns, both answered monoclinic: every rate is 1, the confusion matrix keeps
    all seven systems, and scikit-learn's single-label warning is not passed on."""
    proba = np.zeros((2, 7))
    proba[:, 1] = 1.0
    m = classification_metrics(np.array([1, 1]), proba)
    assert (m["accuracy"], m["top2_accuracy"], m["balanced_accuracy"], m["f1_weighted"]) == (1, 1, 1, 1)
    assert np.array(m["confusion_matrix"]).shape == (7, 7) and m["confusion_matrix"][1][1] == 2


def test_mean_std_over_folds():
    folds = [classification_metrics(*_random_case(100, s), per_class=True) for s in range(4)]
    s = mean_std(folds)
    acc = [f["accuracy"] for f in folds]
    assert s["accuracy"] == pytest.approx(np.mean(acc)) and s["accuracy_std"] == pytest.approx(np.std(acc, ddof=1))
    assert np.sum(s["confusion_matrix"]) == 400 and s["folds"] == 4


def test_baselines_behave_as_their_strategies():
    rng = np.random.default_rng(0)
    y_train = np.array([1] * 60 + [0] * 30 + [2] * 10)
    mf = baseline_probabilities("most_frequent", y_train, 5, rng)
    assert (mf.argmax(1) == 1).all() and (np.argsort(-mf[0])[:2] == [1, 0]).all()
    st = baseline_probabilities("stratified", y_train, 20000, rng).argmax(1)
    assert np.bincount(st, minlength=7)[[1, 0, 2]] / 20000 == pytest.approx([0.6, 0.3, 0.1], abs=0.02)
    un = baseline_probabilities("uniform", y_train, 21000, rng).argmax(1)
    assert np.bincount(un, minlength=7) / 21000 == pytest.approx([1 / 7] * 7, abs=0.02)
    with pytest.raises(CrystalmelaError, match="unknown baseline"):
        baseline_probabilities("clever", y_train, 1, rng)


def test_folds_are_disjoint_stratified_and_cover_the_rows():
    labels = np.repeat(np.arange(7), [40, 100, 50, 20, 20, 10, 10])
    folds = fold_rows(labels, 5, seed=0)
    tests = np.concatenate([te for _, _, te in folds])
    assert sorted(tests.tolist()) == list(range(len(labels)))
    for tr, va, te in folds:
        assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
        assert len(tr) + len(va) + len(te) == len(labels)
        assert np.bincount(labels[te], minlength=7)[1] == 20        # 100 / 5
    sub = fold_rows(labels, 5, seed=0, limit=200)
    assert sum(len(te) for _, _, te in sub) == 200
    with pytest.raises(CrystalmelaError, match="hexagonal"):
        fold_rows(labels, 11, seed=0)


@pytest.mark.parametrize("limit, folds, match", [
    (3, 2, "--limit 3: a stratified sample needs at least one pattern of each of the 7 classes"),
    (10, 2, "2-fold CV needs at least 2 patterns of every class present; too few:"),
    (100, 2, None),      # 50 training rows a fold: a 10 % validation part (5) could not hold 7 classes
    (120, 2, None),
])
def test_small_limits_give_a_reason_or_valid_folds(limit, folds, match):
    """Sizes where scikit-learn's stratified splits used to raise (an 'internal error'): a reason,
    or folds whose training part holds every class."""
    labels = np.repeat(np.arange(7), [40, 100, 50, 20, 20, 10, 10])
    if match:
        with pytest.raises(CrystalmelaError, match=match):
            fold_rows(labels, folds, seed=0, limit=limit)
        return
    for tr, va, te in fold_rows(labels, folds, seed=0, limit=limit):
        assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
        assert set(labels[tr]) == set(range(7)) and len(va) >= 7     # the val part sized for 7 strata


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("cv") / "ds"
    build(out, BuildSettings(synthetic=200, chunk_size=100, seed=5), workers=1, progress=False)
    return out


def test_cross_validation_report_end_to_end(tiny_data, tmp_path):
    report = cross_validate(["random_forest", "extra_trees"], tiny_data, "full", folds=3, seed=1,
                            configs=TINY, progress=False)
    assert report["n"] == 200 and report["folds"] == 3
    for m in (report["ensemble"], *report["per_model"].values()):
        assert REQUIRED <= set(m) and 0 <= m["accuracy"] <= 1 and len(m["per_fold"]) == 3
        assert np.sum(m["confusion_matrix"]) == 200
    assert set(report["baselines"]) == set(BASELINES)
    files = write_report(report, tmp_path / "rep")
    assert {f.name for f in files} >= {"report.json", "report.md", "confusion_matrices.png",
                                       "per_class_f1.png", "reliability.png"}
    loaded = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert REQUIRED <= set(loaded["ensemble"]) and loaded["classes"] == list(CRYSTAL_SYSTEMS)
    assert "| **ensemble** |" in (tmp_path / "rep" / "report.md").read_text()
    assert (tmp_path / "rep" / "confusion_matrices.png").read_bytes()[:4] == b"\x89PNG"


def test_cross_validation_trains_the_cnn_too(tiny_data):
    report = cross_validate(["cnn_flax"], tiny_data, "full", folds=2, configs=TINY, progress=False)
    assert report["per_model"]["cnn_flax"]["n"] == 200


def test_cli_cross_validation(tiny_data, tmp_path, capsys):
    (tmp_path / "cfg.json").write_text(json.dumps(TINY["random_forest"]))
    assert main(["evaluate", "--model", "random_forest", "--data", str(tiny_data), "--folds", "2",
                 "--config", str(tmp_path / "cfg.json"), "--output", str(tmp_path / "o"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2-fold CV" in out and "dummy most_frequent" in out
    assert (tmp_path / "o" / "report.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["evaluate"], "give --data"),
    (["evaluate", "--data", "/nonexistent"], "not a built data set"),
    (["evaluate", "--patterns", "/nonexistent", "--labels", "x.csv"], "not a folder"),
    (["evaluate", "--patterns", "."], "needs --labels"),
    (["evaluate", "--model", "nope", "--data", "{data}"], "nope"),
    (["evaluate", "--data", "{data}", "--folds", "1"], "--folds: expected a whole number ≥ 2, got '1'"),
    (["evaluate", "--data", "{data}", "--folds", "0"], "--folds: expected a whole number ≥ 2, got '0'"),  # was 10
    (["evaluate", "--data", "{data}", "--workers", "0"], "--workers: expected a whole number ≥ 1"),
    (["dataset", "build", "{data}-new", "--synthetic", "4", "--workers", "0"], "--workers: expected a whole"),
])
def test_cli_bad_requests_are_one_line_errors(tiny_data, capsys, argv, message):
    argv = [a.replace("{data}", str(tiny_data)) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:          # argparse's usage errors
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _pattern_folder(tmp_path, shared_cifs):
    """A few real structures simulated to .xy files, with labels.csv."""
    from crystalmela.simulation.simulate import simulate
    from crystalmela.simulation.structure import read_cif
    root = tmp_path / "patterns"
    root.mkdir()
    rows = ["file,crystal_system"]
    for cif in shared_cifs[::25][:8]:
        try:
            crystal = read_cif(cif)[0]
            p = simulate(crystal)
        except CrystalmelaError:
            continue
        name = f"{cif.stem}.xy"
        np.savetxt(root / name, np.c_[p.x, p.y], fmt="%.4f")
        rows.append(f"{name},{crystal.crystal_system}")
    (root / "broken.xy").write_text("10.00 5\n10.02 abc\n10.04 7\n")
    rows.append("broken.xy,cubic")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return root, len(rows) - 2


def test_labelled_patterns_report(tmp_path, shared_cifs):
    root, n_good = _pattern_folder(tmp_path, shared_cifs)
    report = evaluate_patterns(root, tmp_path / "labels.csv", progress=False)
    assert report["n"] == n_good >= 5
    assert [f["file"] for f in report["failed"]] == ["broken.xy"]
    assert "broken.xy:2:" in report["failed"][0]["error"] and "abc" in report["failed"][0]["error"]
    assert REQUIRED <= set(report["ensemble"])
    assert set(report["per_model"]) == {"cnn_flax", "extra_trees", "random_forest", "lattice_fit"}
    write_report(report, tmp_path / "rep")
    assert "broken.xy" in (tmp_path / "rep" / "report.md").read_text()


def test_cli_labelled_patterns(tmp_path, shared_cifs, capsys):
    root, _ = _pattern_folder(tmp_path, shared_cifs)
    assert main(["evaluate", "--patterns", str(root), "--labels", str(tmp_path / "labels.csv"),
                 "--model", "random_forest,extra_trees", "--output", str(tmp_path / "o"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "ensemble" in captured.out and "not scored: broken.xy" in captured.err
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert set(rep["per_model"]) == {"random_forest", "extra_trees"}


def test_labelled_patterns_raw_and_calibrated(tmp_path, shared_cifs):
    root, _ = _pattern_folder(tmp_path, shared_cifs)
    cal = evaluate_patterns(root, tmp_path / "labels.csv", progress=False)
    raw = evaluate_patterns(root, tmp_path / "labels.csv", progress=False, calibrate=False)
    # temperatures never change a model's ranking, only its confidence
    for m in ("cnn_flax", "extra_trees", "random_forest"):
        assert cal["per_model"][m]["accuracy"] == raw["per_model"][m]["accuracy"]
    assert cal["per_model"]["cnn_flax"]["ece"] != raw["per_model"]["cnn_flax"]["ece"]


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("name,label\na.xy,cubic\n", "lacks the columns"),
    ("file,crystal_system\na.xy,rhombic\n", "line 2: crystal system 'rhombic'"),
    ("file,crystal_system\nmissing.xy,cubic\n", "line 2: .*missing.xy does not exist"),
    ("file,crystal_system\na.xy,cubic\na.xy,cubic\n", "line 3: a.xy already listed on line 2"),
    ("file,crystal_system\n../a.xy,cubic\n", "must be a path inside"),
    ("file,crystal_system\na.xy\n", "line 2: expected 2 columns"),
    ("file,crystal_system\n\n", "no labelled patterns"),
])
def test_bad_labels_files(tmp_path, text, message):
    (tmp_path / "a.xy").write_text("10 1\n")
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(LabelsError, match=message):
        read_labels(tmp_path / "labels.csv", tmp_path)


def test_labels_accept_case_and_short_names(tmp_path):
    (tmp_path / "a.xy").write_text("10 1\n")
    (tmp_path / "b.xy").write_text("10 1\n")
    (tmp_path / "labels.csv").write_text("crystal_system,file\nMonoclinic,a.xy\nrhombohedral,b.xy\n")
    assert [c for _, c in read_labels(tmp_path / "labels.csv", tmp_path)] == [1, 4]
    with pytest.raises(LabelsError, match="not found"):
        read_labels(tmp_path / "none.csv", tmp_path)


# ------------------------------------------------------------------ the real-structure hold-out (--cifs)
def _copy_cifs(cifs, folder, n=4):
    import shutil
    folder.mkdir(parents=True, exist_ok=True)
    for p in cifs[:n]:
        shutil.copy(p, folder / p.name)
    return folder


def test_evaluate_cifs_scores_clean_and_lab_renderings(shared_cifs, tmp_path, capsys):
    few = _copy_cifs(shared_cifs, tmp_path / "few")
    assert main(["evaluate", "--cifs", str(few), "--lab", "--output", str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "4 patterns, data set full, clean renderings" in out and "lab renderings" in out
    assert "ensemble 95 % interval: top-1" in out
    report = json.loads((tmp_path / "out" / "lab" / "report.json").read_text())
    assert report["n"] == 4 and set(report["per_model"]) >= {"lattice_fit", "cnn_flax"}
    lo, hi = report["ensemble"]["accuracy_interval"]
    assert 0 <= lo <= report["ensemble"]["accuracy"] <= hi <= 1


def test_evaluate_cifs_refuses_missing_and_empty_folders(tmp_path, capsys):
    assert main(["evaluate", "--cifs", str(tmp_path / "none")]) == 2
    assert "--cifs: not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--cifs", str(tmp_path / "empty")]) == 2
    assert "no readable CIF with reflections below 90°" in capsys.readouterr().err
    assert main(["evaluate", "--lab", "--patterns", str(tmp_path)]) == 2
    assert "--lab renders CIFs under lab conditions: give --cifs DIR" in capsys.readouterr().err


def test_lab_renderings_do_not_depend_on_the_cifs_skipped_before_them(shared_cifs, tmp_path):
    """A CIF with nothing on the paper grid is skipped before its lab conditions are drawn, so the
    other structures' lab renderings are the same with it or without it."""
    import shutil

    from crystalmela.evaluation.holdout import cif_patterns
    empty = [p for p in shared_cifs if p.name == "Dans_Diffraction__Structures__Cubic.cif"]
    if not empty:
        pytest.skip("the shared hold-out lacks Dans_Diffraction__Structures__Cubic.cif")
    other = _copy_cifs(shared_cifs, tmp_path / "other", n=1)
    both = tmp_path / "both"
    shutil.copytree(other, both)
    shutil.copy(empty[0], both / ("A_" + empty[0].name))          # sorts first
    alone = list(cif_patterns([other], lab=True))
    with_empty = list(cif_patterns([both], lab=True))
    assert [p.name for p, _, _ in with_empty] == [p.name for p, _, _ in alone]
    assert np.array_equal(with_empty[0][2].y, alone[0][2].y)
