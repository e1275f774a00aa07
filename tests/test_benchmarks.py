"""The diagnostic scripts in benchmarks/: bad inputs are clear messages (exit 2), and they run on a
tiny built data set and on a few real CIFs."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from crystalmela.dataset import BuildSettings, build

BENCH = Path(__file__).parent.parent / "benchmarks"


def _script(name):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "ds"
    build(out, BuildSettings(synthetic=120, chunk_size=60, seed=5), workers=1, progress=False)
    return out


def test_lattice_diagnostics_bad_inputs(tmp_path, capsys):
    main = _script("lattice_diagnostics").main
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2 and "either CIF folders or --data" in capsys.readouterr().err
    assert main([str(tmp_path / "none")]) == 2
    assert "no readable crystal" in capsys.readouterr().err
    assert main(["--data", str(tmp_path)]) == 2
    assert "not a built data set" in capsys.readouterr().err


def test_lattice_diagnostics_on_a_built_data_set(tiny_data, capsys):
    assert _script("lattice_diagnostics").main(["--data", str(tiny_data), "--n", "12"]) == 0
    out = capsys.readouterr().out
    assert "val rows of" in out and "in the wide window" in out and "hhl condition" in out


def test_cell_angles(tiny_data, shared_cifs, tmp_path, capsys):
    main = _script("cell_angles").main
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    from crystalmela.structure import StructureError, read_cif
    kept = 0
    for path in shared_cifs:                     # a few real monoclinic and triclinic structures
        try:
            system = read_cif(path)[0].crystal_system
        except StructureError:
            continue
        if system in ("monoclinic", "triclinic"):
            (cifs / path.name).write_bytes(path.read_bytes())
            kept += 1
        if kept == 8:
            break
    assert main([str(cifs), "--data", str(tiny_data)]) == 0
    out = capsys.readouterr().out
    assert "real       monoclinic" in out and "train " in out and "within 5°" in out
    assert "longest / shortest axis" in out and out.count("share > 2 / 3 / 4 / 6") == 2
    assert main([str(tmp_path / "none"), "--data", str(tiny_data)]) == 2
    assert "no readable monoclinic or triclinic CIF" in capsys.readouterr().err
    assert main([str(cifs), "--data", str(tmp_path)]) == 2
    assert "not a built data set" in capsys.readouterr().err


def test_mono_trial_runs_and_refuses_empty_input(shared_cifs, tmp_path, capsys):
    main = _script("mono_trial").main
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    for path in shared_cifs[:6]:
        (cifs / path.name).write_bytes(path.read_bytes())
    assert main([str(cifs)]) == 0
    out = capsys.readouterr().out
    assert "mP full" in out and "own lattice aP" in out and "oP (n)" in out
    assert main([str(cifs), "--trials", "hough"]) == 0
    assert main([str(cifs), "--trials", "sweep"]) == 0
    assert "own lattice aP" in capsys.readouterr().out
    assert main([str(tmp_path / "none")]) == 2
    assert "no readable crystal" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([str(cifs), "--trials", "zones"])
    assert exc.value.code == 2 and "invalid choice: 'zones'" in capsys.readouterr().err


def _tric_lines(cell, drop):
    """Q and hkl of the first 20 distinct lines of a triclinic ``cell`` (one of each ±hkl), without
    those ``drop(h, k, l)`` marks, on the Cu Kα1 peak scale of ``indexing.peaks_q``."""
    from itertools import product
    from crystalmela.augment import reciprocal_metric
    from crystalmela_lattice_fit import indexing as ix
    R = reciprocal_metric(np.asarray(cell, float))
    H = np.array([v for v in product(range(-6, 7), repeat=3) if any(v) and v > tuple(-x for x in v)])
    H = H[~drop(*H.T)]
    Q = np.einsum("ni,ij,nj->n", H, R, H)
    order = np.argsort(Q)
    Q, H = Q[order], H[order]
    distinct = np.r_[True, np.diff(Q) > 2e-4]
    Q, H = Q[distinct][:20], H[distinct][:20]
    q, slope = ix.peaks_q(2 * np.degrees(np.arcsin(np.sqrt(Q) * 1.54056 / 2)), 1.54056)
    return q, slope, H, R


def _has_metric(rows, T, R) -> bool:
    """Whether trial rows (A, …, F) hold the reciprocal metric R in the basis T (rows: three hkl), in
    any order of its axes and up to their signs (|D|, |E|, |F| and the sign of D·E·F are what no
    flip changes)."""
    from itertools import permutations
    for order in permutations(range(3)):
        G = T[list(order)] @ R @ T[list(order)].T
        want = np.array([G[0, 0], G[1, 1], G[2, 2], 2 * G[0, 1], 2 * G[0, 2], 2 * G[1, 2]])
        same = (np.abs(rows[:, :3] - want[:3]) <= 3e-4).all(axis=1)
        same &= (np.abs(np.abs(rows[:, 3:]) - np.abs(want[3:])) <= 3e-4).all(axis=1)
        if (same & (np.sign(rows[:, 3:].prod(axis=1)) == np.sign(want[3:].prod()))).any():
            return True
    return False


def test_hough_trials_recover_a_cross_term_whose_zone_lines_are_missing():
    """Without any 0kl line but 0k0 and 00l, no zone gives the (001, 010, 100) basis its cross term F
    and lattice_fit's trials lack that metric; the Hough trials, voting over every peak, have it."""
    from crystalmela_lattice_fit.triclinic import tric_trials
    mono_trial = _script("mono_trial")
    q, slope, H, R = _tric_lines((6.3, 7.9, 9.4, 79.0, 84.0, 72.0), lambda h, k, l: (h == 0) & (k != 0) & (l != 0))
    assert [tuple(h) for h in H[:3]] == [(0, 0, 1), (0, 1, 0), (1, 0, 0)]
    basis = H[:3].astype(float)
    assert not _has_metric(tric_trials(q, slope), basis, R)
    assert _has_metric(mono_trial.hough_trials(q, slope), basis, R)
    shipped = mono_trial.fit_tric_with(q, slope)
    both = mono_trial.fit_tric_with(q, slope, mono_trial.hough_trials)
    assert both[0] * both[1] ** 4 >= shipped[0] * shipped[1] ** 4          # never worse than the shipped


def test_sweep_trials_find_a_cross_term_no_zone_votes_for():
    """The same pattern as the Hough test (no 0kl line): sweeping F over its whole range, scored on
    every peak, finds the metric that lattice_fit's trials lack, and the search then indexes all."""
    from crystalmela_lattice_fit.triclinic import tric_trials
    mono_trial = _script("mono_trial")
    q, slope, H, R = _tric_lines((6.3, 7.9, 9.4, 79.0, 84.0, 72.0), lambda h, k, l: (h == 0) & (k != 0) & (l != 0))
    basis = H[:3].astype(float)
    assert not _has_metric(tric_trials(q, slope), basis, R)
    rows = mono_trial.sweep_trials(q, slope)
    assert rows.shape[1] == 6 and _has_metric(rows, basis, R)
    M, f = mono_trial.fit_tric_with(q, slope, mono_trial.sweep_trials)[:2]
    assert f == 1.0 and M > 10


def test_half_trials_read_a_second_order_line_as_an_axis():
    """With no 001 line, 002 is the first peak: its Q/4 is the axial line 001, so the half trials hold
    the metric in the basis (001, 010, 100), which lattice_fit's trials (observed lines only) cannot."""
    from crystalmela_lattice_fit.triclinic import tric_trials
    mono_trial = _script("mono_trial")
    q, slope, H, R = _tric_lines((6.3, 7.0, 15.0, 79.0, 84.0, 72.0), lambda h, k, l: (h == 0) & (k == 0) & (l == 1))
    first = [tuple(h) for h in H[:7]]
    assert first[0] == (0, 0, 2) and (0, 1, 0) in first and (1, 0, 0) in first
    basis = np.array([(0, 0, 1), (0, 1, 0), (1, 0, 0)], float)
    assert not _has_metric(tric_trials(q, slope), basis, R)
    assert _has_metric(mono_trial.half_trials(q, slope), basis, R)


def test_own_cell_figure_is_reached_by_the_searches_on_their_own_patterns(shared_cifs):
    """The yardstick of mono_trial's "own lattice" columns: a crystal's own cell indexes its own peaks
    (high M), the aP (mP) search reaches it there, and it fits another crystal's peaks badly."""
    from crystalmela.simulate import simulate
    from crystalmela.structure import read_cif
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit.monoclinic import fit_mono_four_line
    from crystalmela_lattice_fit.plugin import pick_peaks
    from crystalmela_lattice_fit.triclinic import fit_tric
    mono_trial = _script("mono_trial")
    by_name = {p.stem: p for p in shared_cifs}
    tric, other, mono = (read_cif(by_name[n])[0] for n in ("mech_TRPHAM01", "mech_TEPNIT02", "test_ACSALA13"))
    assert tric.crystal_system == other.crystal_system == "triclinic" and mono.crystal_system == "monoclinic"

    def peaks(crystal):
        pattern = simulate(crystal)
        return ix.peaks_q(np.sort(pick_peaks(pattern))[:ix.N_OBS], pattern.wavelength)

    q, slope = peaks(tric)
    own = mono_trial.own_cell_figure(tric.cell, q, slope)
    assert own[0] > 20 and own[1] == 1.0
    assert mono_trial.found_own(*fit_tric(q, slope)[:2], own)
    assert mono_trial.own_cell_figure(tric.cell, q, slope, "mP") == (0.0, 0.0)      # not monoclinic
    elsewhere = mono_trial.own_cell_figure(tric.cell, *peaks(other))
    assert elsewhere[0] < 0.2 * own[0] or elsewhere[1] < 0.8
    q, slope = peaks(mono)
    own = mono_trial.own_cell_figure(mono.cell, q, slope, "mP")
    assert own[0] > 20 and own[1] == 1.0
    assert mono_trial.found_own(*fit_mono_four_line(q, slope)[:2], own)
    assert mono_trial.own_cell_figure(mono.cell, q, slope, "oP") == (0.0, 0.0)      # β is not 90°


def test_own_orthorhombic_cell_is_reached_by_the_op_search(shared_cifs):
    """The oP column of the yardstick: benzene's own cell (Pbca) indexes its peaks and the oP
    search reaches it; oxalic acid's cell does not index benzene's peaks."""
    from crystalmela.simulate import simulate
    from crystalmela.structure import read_cif
    from crystalmela_lattice_fit import indexing as ix
    from crystalmela_lattice_fit.plugin import pick_peaks
    mono_trial = _script("mono_trial")
    by_name = {p.stem: p for p in shared_cifs}
    benzene, oxalic = (read_cif(by_name[n])[0] for n in ("test_BENZEN", "test_OXALAC02"))
    assert benzene.crystal_system == oxalic.crystal_system == "orthorhombic"
    pattern = simulate(benzene)
    q, slope = ix.peaks_q(np.sort(pick_peaks(pattern))[:ix.N_OBS], pattern.wavelength)
    own = mono_trial.own_cell_figure(benzene.cell, q, slope, "oP")
    assert own[0] > 20 and own[1] == 1.0
    assert mono_trial.found_own(*ix.ortho_search(q, slope)[:2], own)
    wrong = mono_trial.own_cell_figure(oxalic.cell, q, slope, "oP")
    assert wrong[0] < 0.2 * own[0] or wrong[1] < 0.8


def test_mono_trial_on_data_set_rows(tiny_data, capsys, tmp_path):
    """--data: val rows of a built data set, with their stored cells as the yardstick."""
    main = _script("mono_trial").main
    assert main(["--data", str(tiny_data), "--n", "40"]) == 0
    out = capsys.readouterr().out
    assert "val rows of" in out and "own lattice" in out
    with pytest.raises(SystemExit):                      # both sources, or neither
        main([str(tmp_path), "--data", str(tiny_data)])
    with pytest.raises(SystemExit):
        main([])
    with pytest.raises(SystemExit):
        main(["--data", str(tiny_data), "--n", "0"])
    assert main(["--data", str(tmp_path / "absent")]) == 2
    assert "--data" in capsys.readouterr().err


@pytest.mark.parametrize("script, args, message", [
    ("bench_augment", ["{absent}"], "not a built data set"),
    ("bench_forest_size", ["{absent}", "random_forest"], "not a built data set"),
    ("compare_combiners", ["{absent}"], "not a built data set"),
    ("ensemble_members", ["{absent}"], "not a built data set"),
    ("compare_preprocess", ["{absent}", "{absent}"], "not a built data set"),
    ("bench_dataset", ["--cif", "{absent}"], "not a folder of CIF files"),
    ("bench_predict", ["{absent}"], "no such file"),
    ("bench_simulate", ["{absent}"], "not a folder"),
    ("scan_conditions", ["{absent}"], "no such file"),
])
def test_benchmarks_refuse_missing_input_without_a_traceback(tmp_path, capsys, script, args, message):
    absent = tmp_path / "absent"
    assert _script(script).main([a.format(absent=absent) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(script) and message in err and str(absent) in err


def test_scan_conditions_measures_a_real_scan_against_the_training_ranges(capsys):
    """The bundled LiCoO2 scan: its counts, background and widths, and where they sit in the
    augmentation's ranges (each share a probability)."""
    example = Path(__file__).parent.parent / "examples" / "LiCoO2.RAW"
    assert _script("scan_conditions").main([str(example), "--peaks", "4"]) == 0
    out = capsys.readouterr().out
    assert "step 0.030°" in out and "38405 counts at the top" in out
    assert out.count("°") >= 6 and "19.04° 0.1" in out         # the 003 line, ≈ 0.15° wide
    shares = [float(v) for v in out.split("at least as mild: ")[1].replace(",", "").split()[1::2]]
    assert len(shares) == 3 and all(0 <= v <= 1 for v in shares)


def test_scan_conditions_skips_a_scan_not_on_a_2theta_axis(monkeypatch, capsys):
    import crystalmela.reading
    from crystalmela.pattern import Pattern
    d = np.linspace(1.0, 8.0, 500)
    monkeypatch.setattr(crystalmela.reading, "read_pattern",
                        lambda f: Pattern(d, 100 + 0 * d, axis="d"))
    assert _script("scan_conditions").main(["scan.dat"]) == 0
    assert "scan.dat: a d axis; widths are measured in ° 2θ, skipped" in capsys.readouterr().out


@pytest.mark.parametrize("counts, background, fwhm, expected", [
    (300.0, 0.4, 0.25, {"counts": 1.0, "background": 1.0, "fwhm": 1.0}),   # the harshest end: all milder
    (50_000.0, 0.0, 0.04, {"counts": 0.0, "background": 0.1, "fwhm": 0.0}),  # only the 10 % without background
])
def test_scan_conditions_shares_follow_the_fields_distributions(counts, background, fwhm, expected):
    from crystalmela.augment import AugmentSettings
    share = _script("scan_conditions").milder_share(AugmentSettings(), counts, background, fwhm)
    assert share == pytest.approx(expected)


@pytest.mark.parametrize("args, message", [
    (["--peaks", "0"], "--peaks must be at least 1"),
    (["--augment", "{tmp}/absent.json"], "--augment"),
    (["--augment", "{tmp}/typo.json"], "counts: Input should be a valid array (got 'many')"),
])
def test_scan_conditions_refuses_bad_options(tmp_path, capsys, args, message):
    (tmp_path / "typo.json").write_text('{"counts": "many"}')
    example = Path(__file__).parent.parent / "examples" / "LiCoO2.RAW"
    argv = [str(example), *(a.format(tmp=tmp_path) for a in args)]
    assert _script("scan_conditions").main(argv) == 2
    assert message in capsys.readouterr().err


def test_eval_holdout_refuses_missing_and_empty_folders(tmp_path, capsys):
    main = _script("eval_holdout").main
    assert main([str(tmp_path / "none")]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "bad.cif").write_text("data_x\n_cell_length_a 5\n")
    assert main([str(tmp_path)]) == 2
    assert "no readable CIF" in capsys.readouterr().err and not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize("item, message", [
    ("{bad}=cubic", "no reader recognises this file"),
    ("{absent}=cubic", "no such file"),
    ("{good}=rhombic", "'rhombic' is not a crystal system"),
    ("{good}", "expected FILE=SYSTEM"),
    ("=cubic", "expected FILE=SYSTEM"),
])
def test_eval_holdout_refuses_a_bad_measured_pattern_before_scoring(tmp_path, capsys, item, message):
    """Each --measured item is read before the hold-out is rendered and scored (minutes), so a
    typo costs nothing and gives the reason, not a traceback at the end."""
    (tmp_path / "bad.xy").write_text("1 2\nfoo bar\n")
    (tmp_path / "good.xy").write_text("".join(f"{10 + 0.02 * i:.2f} {100 + i % 7}\n" for i in range(500)))
    item = item.format(bad=tmp_path / "bad.xy", absent=tmp_path / "absent.xy", good=tmp_path / "good.xy")
    assert _script("eval_holdout").main([str(tmp_path), "--measured", item]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_eval_holdout_reports_recall_per_class(shared_cifs, tmp_path, capsys):
    """Two real structures: top-2 recall is never below top-1, and classes absent
    from the set get None."""
    import json
    import shutil
    picked = {}
    for path in shared_cifs:
        if "Cubic" in path.name or "mineral" in path.name:
            continue
        picked.setdefault(path.parent.name, path)
        if len(picked) == 2:
            break
    for path in picked.values():
        shutil.copy(path, tmp_path / path.name)
    out = tmp_path / "r.json"
    assert _script("eval_holdout").main([str(tmp_path), "--json", str(out)]) == 0
    assert "recall per class" in capsys.readouterr().out
    report = json.loads(out.read_text())
    rec = report["results"]["clean"]["calibrated"]["ensemble_recall_per_class"]
    present = [c for c, n in enumerate(report["per_class"]) if n]
    assert all((rec["top1"][c] is None) == (c not in present) for c in range(7))
    assert all(rec["top2"][c] >= rec["top1"][c] for c in present)
    # each structure's system and every model's probabilities, the ensemble's among them
    res = report["results"]["clean"]["calibrated"]
    assert sorted(report["labels"]) == sorted(res["ensemble_per_structure"]) and len(report["labels"]) == 2
    for key in ("accuracy", "top2_accuracy"):          # each rate with its interval, holding it
        lo, hi = res["ensemble"][key + "_interval"]
        assert 0 <= lo <= res["ensemble"][key] <= hi <= 1
    models = {m for m in res if m not in ("ensemble", "ensemble_per_structure", "per_structure", "unsure",
                                          "ensemble_recall_per_class")}
    assert set(res["per_structure"]) == models and "lattice_fit" in models
    for probs in res["per_structure"].values():
        assert sorted(probs) == sorted(report["labels"])
        assert all(len(p) == 7 and abs(sum(p) - 1) < 1e-3 for p in probs.values())
    assert _script("holdout_misses").main([str(out)]) == 0      # the report reads back structure by structure
    assert "clean (calibrated): ensemble misses" in capsys.readouterr().out


def _misses_report(path, labels=None, drop=None):
    """A two-structure eval_holdout-style report: A (monoclinic) missed by the ensemble, right by
    lattice_fit alone; B (cubic) right by the ensemble and wrong by lattice_fit."""
    import json
    labels = labels or {"x/A.cif": "monoclinic", "x/B.cif": "cubic"}
    ens = {"x/A.cif": [0.05, 0.30, 0.60, 0.05, 0, 0, 0], "x/B.cif": [0, 0, 0, 0.4, 0, 0, 0.6]}
    lf = {"x/A.cif": [0, 0.7, 0.3, 0, 0, 0, 0], "x/B.cif": [0, 0, 0, 0.6, 0, 0, 0.4]}
    res = {"ensemble_per_structure": ens, "per_structure": {"lattice_fit": lf, "cnn_flax": ens}}
    report = {"labels": labels, "results": {"clean": {"calibrated": res, "raw": res}}}
    for key in drop or ():
        report.pop(key) if key in report else res.pop(key)
    path.write_text(json.dumps(report))
    return path


def test_holdout_misses_lists_misses_and_where_a_model_differs(tmp_path, capsys):
    assert _script("holdout_misses").main([str(_misses_report(tmp_path / "r.json"))]) == 0
    out = capsys.readouterr().out
    assert "ensemble misses 1 of 2 at top-1, 0 at top-2" in out
    assert "top-2 A" in out and "p 0.300 rank 2" in out and "orth 0.60  mono 0.30" in out
    right, wrong = out.split("lattice_fit right, ensemble wrong: 1")[1].split("ensemble right, lattice_fit wrong: 1")
    assert "A " in right and "B " not in right
    assert "B " in wrong and "p(true) lattice_fit 0.40, ensemble 0.60" in wrong
    assert _script("holdout_misses").main([str(tmp_path / "r.json"), "--compare", "cnn_flax"]) == 0
    assert "cnn_flax right, ensemble wrong: 0" in capsys.readouterr().out


@pytest.mark.parametrize("kind, message", [
    ("missing", "not a readable eval_holdout.py --json report"),
    ("not json", "not a readable eval_holdout.py --json report"),
    ("a list", "no 'results' object"),
    ("old", "older than 2026-12-01"),
    ("no per-structure", "no per-structure probabilities for clean/calibrated"),
    ("bad system", "'rhombic' is not a crystal system"),
    ("unknown model", "no model 'boosted' in the report (it has cnn_flax, lattice_fit)"),
])
def test_holdout_misses_refuses_bad_reports(tmp_path, capsys, kind, message):
    path = tmp_path / "r.json"
    args = []
    if kind == "not json":
        path.write_text("{oops")
    elif kind == "a list":
        path.write_text("[1, 2]")
    elif kind == "old":
        _misses_report(path, drop=["labels"])
    elif kind == "no per-structure":
        _misses_report(path, drop=["per_structure"])
    elif kind == "bad system":
        _misses_report(path, labels={"x/A.cif": "rhombic", "x/B.cif": "cubic"})
    elif kind == "unknown model":
        _misses_report(path)
        args = ["--compare", "boosted"]
    assert _script("holdout_misses").main([str(path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err


def _candidate_report(path, ens=None, labels=None, conditions=("clean",)):
    """A report in the format _misses_report writes, with the ensemble's probabilities given."""
    import json
    labels = labels or {"x/A.cif": "monoclinic", "x/B.cif": "cubic"}
    ens = ens or {"x/A.cif": [0, 0.7, 0.3, 0, 0, 0, 0], "x/B.cif": [0, 0, 0, 0.4, 0, 0, 0.6]}
    res = {"ensemble_per_structure": ens, "per_structure": {"lattice_fit": ens}}
    path.write_text(json.dumps({"labels": labels, "results": {c: {"calibrated": res} for c in conditions}}))
    return path


def test_compare_reports_pairs_the_structures(tmp_path, capsys):
    """Base misses A at top-1 (top-2) and gets B; the candidate gets both: one gained, none lost."""
    base = _misses_report(tmp_path / "base.json")
    cand = _candidate_report(tmp_path / "cand.json")
    assert _script("compare_reports").main([str(base), str(cand)]) == 0
    out = capsys.readouterr().out
    top1, top2 = out.split("clean: 2 structures in both")[1].split("  top-2:")
    assert "top-1: base 0.500" in top1 and "candidate 1.000" in top1
    assert "only base right 0, only candidate right 1: exact McNemar p = 1.00" in top1
    assert "+ A " in top1 and "- " not in top1
    assert "base 1.000" in top2 and "only base right 0, only candidate right 0" in top2
    # reversed, the structure is lost instead
    assert _script("compare_reports").main([str(cand), str(base)]) == 0
    assert "- A " in capsys.readouterr().out


@pytest.mark.parametrize("kind, message", [
    ("missing", "not a readable eval_holdout.py --json report"),
    ("unknown model", "no model 'boosted' in the report"),
    ("systems differ", "disagree on 1 structure(s)' system, e.g. x/A.cif: monoclinic in"),
    ("no common condition", "no condition in common"),
    ("no common structure", "no structure in common for clean"),
])
def test_compare_reports_refuses_reports_it_cannot_pair(tmp_path, capsys, kind, message):
    base = _misses_report(tmp_path / "base.json")
    cand = tmp_path / "cand.json"
    args = []
    if kind == "unknown model":
        _candidate_report(cand)
        args = ["--model", "boosted"]
    elif kind == "systems differ":
        _candidate_report(cand, labels={"x/A.cif": "triclinic", "x/B.cif": "cubic"})
    elif kind == "no common condition":
        _candidate_report(cand, conditions=("lab",))
    elif kind == "no common structure":
        _candidate_report(cand, ens={"y/C.cif": [1, 0, 0, 0, 0, 0, 0]}, labels={"y/C.cif": "triclinic"})
    assert _script("compare_reports").main([str(base), str(cand), *args]) == 2
    assert message in capsys.readouterr().err


def _mono_cif(path, beta):
    path.write_text("data_x\n_cell_length_a 5.1\n_cell_length_b 6.3\n_cell_length_c 7.4\n_cell_angle_alpha 90\n"
                    f"_cell_angle_beta {beta}\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'P 1 21/c 1'\n"
                    "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
                    "_atom_site_fract_z\nS1 S 0.13 0.21 0.37\n")


def test_pseudo_symmetry_counts_metric_higher_lattices(tmp_path, capsys):
    """A P2₁/c cell with β = 90.0 is metrically orthorhombic (pseudo-symmetric at every δ), one with
    β = 104° is not; an eval_holdout report is split into the two groups."""
    import json
    main = _script("pseudo_symmetry").main
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    _mono_cif(cifs / "flat.cif", 90.0)
    _mono_cif(cifs / "tilted.cif", 104.0)
    assert main([str(cifs), "--obliquity", "0.2"]) == 0
    mono = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("monoclinic"))
    assert mono.split()[1:] == ["2", "1"]
    report = tmp_path / "r.json"
    assert _script("eval_holdout").main([str(cifs), "--json", str(report)]) == 0
    probs = json.loads(report.read_text())["results"]["clean"]["calibrated"]["ensemble_per_structure"]
    assert sorted(Path(n).name for n in probs) == ["flat.cif", "tilted.cif"]
    assert all(abs(sum(p) - 1) < 1e-3 for p in probs.values())
    capsys.readouterr()
    assert main([str(cifs), "--obliquity", "0.2", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "clean, δ=0.2: ensemble others 1:" in out and "pseudo-symmetric 1:" in out
    # the ceiling: the other structure counted right, the flat one as the ensemble scores it
    flat = np.argsort(-np.asarray(next(p for n, p in probs.items() if n.endswith("flat.cif"))))
    mono = 1                                          # CRYSTAL_SYSTEMS.index("monoclinic")
    want = [(1 + (flat[0] == mono)) / 2, (1 + (mono in flat[:2])) / 2]
    assert f"every other structure right: top-1 {want[0]:.3f} / top-2 {want[1]:.3f} at most" in out
    assert "flat.cif" in out.split("pseudo-symmetric at")[1] and "tilted.cif" not in out.split("pseudo-symmetric at")[1]


def test_pseudo_symmetry_bad_inputs(tmp_path, capsys):
    import json
    main = _script("pseudo_symmetry").main
    assert main([str(tmp_path / "none")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "no readable CIF" in capsys.readouterr().err
    _mono_cif(tmp_path / "m.cif", 95.0)
    old = tmp_path / "old.json"                   # a report written before per-structure probabilities
    old.write_text(json.dumps({"results": {"clean": {"calibrated": {"ensemble": {}}}}}))
    assert main([str(tmp_path), "--json", str(old)]) == 2
    assert "no per-structure probabilities" in capsys.readouterr().err
    other = tmp_path / "other.json"               # a report on structures elsewhere
    other.write_text(json.dumps({"results": {"clean": {"calibrated": {"ensemble_per_structure": {
        "/elsewhere/x.cif": [1, 0, 0, 0, 0, 0, 0]}}}}}))
    assert main([str(tmp_path), "--json", str(other)]) == 2
    assert "none of its structures is under" in capsys.readouterr().err
    for bad in (tmp_path / "missing.json", tmp_path / "m.cif"):
        assert main([str(tmp_path), "--json", str(bad)]) == 2
        assert "not an eval_holdout.py --json report" in capsys.readouterr().err


def _train(data, out, model="random_forest", dataset="full", trees=5):
    import json
    from crystalmela.cli import main
    cfg = out.parent / f"{out.name}.json"
    cfg.write_text(json.dumps({"n_estimators": trees, "min_samples_leaf": 2}))
    assert main(["train", "--model", model, "--dataset", dataset, "--data", str(data), "--config", str(cfg),
                 "--out", str(out), "--quiet", "--no-calibration"]) == 0
    return out / dataset


def test_compare_models_scores_two_trainings_on_the_same_rows(tiny_data, tmp_path, capsys):
    main = _script("compare_models").main
    a, b = _train(tiny_data, tmp_path / "a", trees=3), _train(tiny_data, tmp_path / "b", trees=20)
    capsys.readouterr()
    assert main([str(tiny_data), str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "lab-like val" in out and "clean val" in out
    lines = [line for line in out.splitlines() if str(b) in line]
    assert len(lines) == 2 and all(len(line.split()) == 8 for line in lines)     # + only-right counts
    import json
    card = json.loads((a / "model_card.json").read_text())
    first = next(line for line in out.splitlines() if line.strip().startswith(str(a)))
    assert float(first.split()[1]) == pytest.approx(card["metrics"]["val"]["accuracy"], abs=1e-4)


def test_compare_models_refuses_what_cannot_be_compared(tiny_data, tmp_path, capsys):
    main = _script("compare_models").main
    rf = _train(tiny_data, tmp_path / "rf")
    et = _train(tiny_data, tmp_path / "et", model="extra_trees")
    org = _train(tiny_data, tmp_path / "org", dataset="organic")
    capsys.readouterr()
    for argv, match in [([str(tmp_path / "nowhere"), str(rf)], "not a data set build"),
                        ([str(tiny_data), str(tmp_path)], "no model_card.json"),
                        ([str(tiny_data), str(rf), str(et)], "feature 'suzuki_inv_d2', not"),
                        ([str(tiny_data), str(rf), str(org)], "dataset 'organic', not 'full'")]:
        assert main(argv) == 2
        assert match in capsys.readouterr().err


def _few_cifs(shared_cifs, folder, n=3):
    """``n`` readable real structures from different source folders, copied into ``folder``."""
    import shutil
    folder.mkdir()
    picked = {}
    for path in shared_cifs:
        if "Cubic" in path.name:
            continue
        picked.setdefault(path.parent.name, path)
        if len(picked) == n:
            break
    for path in picked.values():
        shutil.copy(path, folder / path.name)
    return folder


def test_score_candidates_scores_models_on_the_same_features(shared_cifs, tmp_path, capsys):
    """The installed model and a copy of its folder, and their mean, score alike; the cache is
    reused for the same CIFs and refused for others."""
    import shutil
    import crystalmela_lattice_fit
    main = _script("score_candidates").main
    cifs = _few_cifs(shared_cifs, tmp_path / "cifs")
    installed = Path(crystalmela_lattice_fit.__file__).parent / "models" / "full"
    shutil.copytree(installed, tmp_path / "copy" / "full")
    cache = tmp_path / "f.npz"
    args = [str(cifs), "--model", "lattice_fit", "--candidates", "shipped", str(tmp_path / "copy"), "--mean",
            "--cache", str(cache)]
    assert main(args) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if ": clean " in line]
    assert len(lines) == 3 and len({line.split(":", 1)[1] for line in lines}) == 1
    assert cache.exists() and main(args) == 0
    assert capsys.readouterr().out.count("clean") == 3
    other = _few_cifs(shared_cifs, tmp_path / "other", n=1)
    assert main([str(other), "--model", "lattice_fit", "--candidates", "shipped", "--cache", str(cache)]) == 2
    assert "made for" in capsys.readouterr().err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a cache")
    assert main([str(cifs), "--model", "lattice_fit", "--candidates", "shipped", "--cache", str(junk)]) == 2
    assert "not a cache this script wrote" in capsys.readouterr().err


def test_score_candidates_refuses_what_it_cannot_score(tmp_path, capsys):
    main = _script("score_candidates").main
    assert main([str(tmp_path), "--model", "lattice_fit", "--candidates", str(tmp_path / "none")]) == 2
    assert "no model card" in capsys.readouterr().err
    assert main([str(tmp_path), "--model", "nomodel", "--candidates", "shipped"]) == 2
    assert "unknown model 'nomodel'" in capsys.readouterr().err
    assert main([str(tmp_path), "--model", "cnn_flax", "--candidates", "shipped"]) == 2
    assert "reads the profile" in capsys.readouterr().err
    assert main([str(tmp_path), "--model", "lattice_fit", "--candidates", "shipped", "shipped"]) == 2
    assert "shipped given twice" in capsys.readouterr().err
    assert main([str(tmp_path), "--model", "lattice_fit", "--candidates", "shipped"]) == 2
    assert "no readable CIF" in capsys.readouterr().err


def test_ortho_lines_measures_the_extinction_search_and_refuses_bad_input(shared_cifs, tiny_data, tmp_path, capsys):
    main = _script("ortho_lines").main
    cifs = _few_cifs(shared_cifs, tmp_path / "cifs")
    from crystalmela_lattice_fit import indexing
    default = indexing.ORTHO_LINES_EXT
    assert main([str(cifs), "--lines", "12"]) == 0
    out = capsys.readouterr().out
    assert "extinction search: 12 lines per peak" in out and "clean:" in out and "lab:" in out
    assert "mean time: shipped search" in out
    assert indexing.ORTHO_LINES_EXT == default           # the module's cap is restored
    assert main(["--data", str(tiny_data), "--n", "6"]) == 0
    out = capsys.readouterr().out
    assert "plain:" in out and "lab-like:" in out
    for bad, message in ((["--lines", "0"], "--lines 0: give a positive number"),
                         (["--n", "-1"], "--n -1: give a positive number")):
        assert main([str(cifs), *bad]) == 2
        assert message in capsys.readouterr().err
    assert main([]) == 2
    assert "either CIF folders or --data" in capsys.readouterr().err
    assert main(["--data", str(tmp_path)]) == 2
    assert "not a built data set" in capsys.readouterr().err
    assert main([str(tmp_path / "none")]) == 2
    assert "no pattern with 6 peaks or more" in capsys.readouterr().err


def test_cif_patterns_skip_a_cif_with_nothing_on_the_grid_before_drawing_its_lab_conditions(shared_cifs, tmp_path):
    """eval_holdout.py skips a CIF whose clean rendering has nothing within 0–90° before it draws lab
    conditions for it; cif_patterns (score_candidates, ortho_lines …) must do the same, or every
    later structure's lab rendering differs from the figures eval_holdout.py reports."""
    import shutil
    cif_patterns = _script("eval_holdout").cif_patterns
    empty = [p for p in shared_cifs if p.name == "Dans_Diffraction__Structures__Cubic.cif"]
    if not empty:
        pytest.skip("the shared hold-out lacks Dans_Diffraction__Structures__Cubic.cif")
    other = _few_cifs(shared_cifs, tmp_path / "other", n=1)
    both = tmp_path / "both"
    shutil.copytree(other, both)
    shutil.copy(empty[0], both / ("A_" + empty[0].name))          # sorts first
    alone = list(cif_patterns([other], lab=True))
    with_empty = list(cif_patterns([both], lab=True))
    assert [p.name for p, _, _ in with_empty] == [p.name for p, _, _ in alone]
    assert np.array_equal(with_empty[0][2].y, alone[0][2].y)


def test_column_trial_extends_a_training_cache_and_refuses_one_it_cannot(shared_cifs, tmp_path, capsys):
    """column_trial reads the lattice_fit cache training wrote, recomputes only its trial columns from
    the same renderings (checked against the cache) and fits trees with and without them."""
    main = _script("column_trial").main
    data = tmp_path / "ds"
    build(data, BuildSettings(synthetic=60, chunk_size=60, seed=7), workers=1, progress=False)
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    for path in shared_cifs[:3]:
        (cifs / path.name).write_bytes(path.read_bytes())
    args = [str(data), str(cifs), "--columns", "quality", "--seeds", "1", "--workers", "1"]
    assert main(args) == 2                                     # nothing trained on it yet: no cache
    assert "crystalmela train --model lattice_fit" in capsys.readouterr().err
    _train(data, tmp_path / "m", model="lattice_fit")
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("lattice_fit ", "+ quality (4)"))]
    assert len(rows) == 2 and all(len(line.split("/")) == 4 for line in rows)
    cache = next((data / "features").glob("lattice_fit-*-aug*.npz"))
    with np.load(cache) as z:
        ids, X = z["ids"], z["X"]
    np.savez(cache, ids=ids, X=X + 1.0)                        # not what these renderings give
    assert main(args) == 2
    assert "renders to other features than its cache holds" in capsys.readouterr().err
    assert main([str(tmp_path / "none"), str(cifs), "--columns", "quality"]) == 2
    assert "no such data set folder" in capsys.readouterr().err
    for bad in (["--seeds", "0"], ["--columns", "width"]):
        with pytest.raises(SystemExit) as exc:
            main([str(data), str(cifs), "--columns", "quality", *bad])
        assert exc.value.code == 2


def test_quality_columns_tell_a_sharp_quiet_pattern_from_a_broad_noisy_one(shared_cifs):
    from crystalmela.simulate import simulate
    from crystalmela.structure import read_cif
    column_trial = _script("column_trial")
    eval_holdout = _script("eval_holdout")
    crystal = read_cif(next(p for p in shared_cifs if p.stem == "test_ACSALA13"))[0]
    clean = column_trial.quality(simulate(crystal))
    lab = column_trial.quality(eval_holdout.lab_pattern(crystal, np.random.default_rng(0)))
    assert 0.08 < 10 ** clean[0] < 0.2 and 10 ** clean[0] < 10 ** lab[0]        # FWHM 0.1° profile, 0.12° + Kα2
    assert clean[1] < lab[1] and clean[2] < 0.01 < lab[2]                     # noise, background


def test_sweep_columns_give_the_ap_cell_and_its_lattice_axes():
    from crystalmela import PAPER_GRID, Pattern
    from crystalmela.simulate import simulate
    from crystalmela.structure import Crystal
    from crystalmela_lattice_fit.lattice_symmetry import NO_AXIS
    column_trial = _script("column_trial")
    import gemmi
    tric = Crystal(cell=(5.13, 6.37, 7.71, 77.3, 83.9, 95.2), hall=gemmi.SpaceGroup("P -1").hall,
                   elements=["Fe", "O", "O"], fract=np.array([(0.1, 0.2, 0.3), (0.35, 0.15, 0.6), (0.7, 0.45, 0.1)]),
                   occ=np.ones(3), u_iso=np.full(3, 0.01))
    cols = column_trial.sweep(simulate(tric))
    assert cols[1] == 1.0 and cols[0] > 1.0                  # every peak indexed, M > 10
    assert cols[5:8].tolist() == [0, 0, 0] and cols[8] == NO_AXIS      # a triclinic lattice: no two-fold axis
    x = np.linspace(0, 90, 4501)
    flat = column_trial.sweep(Pattern(x=x, y=np.full_like(x, 10.0), wavelength=1.54056, grid=PAPER_GRID))
    assert flat[:8].tolist() == [0.0] * 8 and flat[8] == NO_AXIS


def test_explain_cells_runs_and_refuses_missing_or_empty_input(shared_cifs, tmp_path, capsys):
    mod = _script("explain_cells")
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    for path in shared_cifs[:5]:
        (cifs / path.name).write_bytes(path.read_bytes())
    assert mod.main([str(cifs)]) == 0
    out = capsys.readouterr().out
    assert "first is own" in out and out.splitlines()[-1].startswith("all")
    n = int(out.splitlines()[-1].split()[1])
    assert 1 <= n <= 5
    assert mod.main([str(tmp_path / "none")]) == 2
    assert "none: not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert mod.main([str(empty)]) == 2
    assert "no readable structure" in capsys.readouterr().err


def test_a_trigonal_crystal_s_lattice_is_split_by_its_centring():
    mod = _script("explain_cells")

    class C:
        crystal_system, spacegroup_number = "trigonal", 166      # R-3m
    assert mod.own_lattice(C) == "rhombohedral"
    C.spacegroup_number = 164                                    # P-3m1
    assert mod.own_lattice(C) == "hexagonal"
    C.crystal_system, C.spacegroup_number = "monoclinic", 14
    assert mod.own_lattice(C) == "monoclinic"
