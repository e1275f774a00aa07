"""The diagnostic scripts in benchmarks/: bad inputs are clear messages (exit 2), and they run on a
tiny built data set and on a few real CIFs."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
    assert main([str(tmp_path / "none"), "--data", str(tiny_data)]) == 2
    assert "no readable monoclinic or triclinic CIF" in capsys.readouterr().err
    assert main([str(cifs), "--data", str(tmp_path)]) == 2
    assert "not a built data set" in capsys.readouterr().err


def _monoclinic_lines(beta_deg: float, n: int):
    """(A, B, C, D), every line Q (hkl ≡ -h k -l) and the Q and slope of the first ``n`` distinct ones
    of a 7 × 9 × 11 Å monoclinic cell, as lattice_fit's peaks_q gives them (Cu Kα1)."""
    import numpy as np
    from itertools import product
    from crystalmela_lattice_fit import indexing as ix
    a, b, c, beta = 7.0, 9.0, 11.0, np.radians(beta_deg)
    s2 = np.sin(beta) ** 2
    P = 1 / (a * a * s2), 1 / (b * b), 1 / (c * c * s2), -2 * np.cos(beta) / (a * c * s2)
    lines = [P[0] * h * h + P[1] * k * k + P[2] * l * l + P[3] * h * l
             for h, k, l in product(range(-15, 16), range(16), range(16))
             if not (l == 0 and h < 0) and (h, k, l) != (0, 0, 0)]
    first = np.unique(np.round(lines, 9))[:n]
    q, slope = ix.peaks_q(np.degrees(2 * np.arcsin(np.sqrt(first) * 1.54056 / 2)), 1.54056)
    return P, lines, q, slope


def test_mono_trial_scores_a_monoclinic_line_list_exactly():
    """The monoclinic scorer of the experiment: a cell's own lines index with no error, and it counts
    the lines (hkl and -h k -l are one) as a brute-force enumeration does."""
    import numpy as np
    from crystalmela_lattice_fit import indexing as ix
    mt = _script("mono_trial")
    (A, B, C, D), lines, q, slope = _monoclinic_lines(97.0, 30)
    q_max = q[-1] * 1.01
    err, coef, n = mt.score_mono(np.array([[A, B, C, D]]), q[None, :], slope * ix.TOL_2THETA, q_max)
    assert err.max() < 1e-3
    assert n[0] == sum(v <= q_max for v in lines)
    hkl = coef[0]                                      # (h², k², l², hl) reproduce each Q
    assert np.allclose(hkl @ np.array([A, B, C, D]), q, rtol=1e-6)


def test_mono_trial_runs_and_refuses_empty_input(shared_cifs, tmp_path, capsys):
    main = _script("mono_trial").main
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    for path in shared_cifs[:6]:
        (cifs / path.name).write_bytes(path.read_bytes())
    assert main([str(cifs)]) == 0
    assert "mP full" in capsys.readouterr().out
    assert main([str(tmp_path / "none")]) == 2
    assert "no readable crystal" in capsys.readouterr().err


@pytest.mark.parametrize("beta", [93.0, 104.0])
def test_mono_trial_four_line_trials_find_a_monoclinic_lattice(beta):
    """From a cell's first 20 lines the four-line trials reach that lattice (perhaps in another
    setting of the ac-net): every line indexed, a high M, and the same reciprocal cell volume."""
    import numpy as np
    mt = _script("mono_trial")
    (A, B, C, D), _, q, slope = _monoclinic_lines(beta, 20)
    M, fraction, _, p, z = mt.fit_mono_four_line(q, slope)
    volume = lambda A, B, C, D: np.sqrt(B * (A * C - D * D / 4))        # reciprocal cell volume
    assert fraction == 1.0 and M > 50 and abs(z) < 1e-3
    assert volume(*p) == pytest.approx(volume(A, B, C, abs(D)), rel=1e-3)


def test_mono_features_trial_refuses_bad_input(tmp_path, capsys):
    main = _script("mono_features_trial").main
    assert main([str(tmp_path), "--data", str(tmp_path)]) == 2
    assert "not a built data set" in capsys.readouterr().err


def test_mono_features_trial_runs_on_a_tiny_set(tiny_data, shared_cifs, tmp_path, capsys):
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    for path in shared_cifs[:4]:
        (cifs / path.name).write_bytes(path.read_bytes())
    main = _script("mono_features_trial").main
    assert main([str(cifs), "--data", str(tiny_data), "--n-train", "40", "--n-val", "10", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    from crystalmela.plugins import get_registry
    from crystalmela_lattice_fit.indexing import FAMILIES, N_FEATURES
    n = N_FEATURES + 11 + 2 * len(FAMILIES) + 2 + 5           # the installed version's columns + five mP ones
    assert f"version {get_registry().feature('lattice_fit').version} + mP ({n})" in out and "hold-out clean" in out
    assert main([str(tmp_path / "none"), "--data", str(tiny_data)]) == 2
    assert "no readable CIF" in capsys.readouterr().err


def test_eval_holdout_refuses_missing_and_empty_folders(tmp_path, capsys):
    main = _script("eval_holdout").main
    assert main([str(tmp_path / "none")]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "bad.cif").write_text("data_x\n_cell_length_a 5\n")
    assert main([str(tmp_path)]) == 2
    assert "no readable CIF" in capsys.readouterr().err and not list(tmp_path.glob("*.json"))


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


def test_mono_features_trial_times_val_rows(tiny_data, tmp_path, capsys):
    main = _script("mono_features_trial").main
    assert main(["--data", str(tiny_data), "--time", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("5 val rows of") and "mP numbers" in out and "ms a pattern" in out
    with pytest.raises(SystemExit) as exc:                   # neither CIF folders nor --time
        main(["--data", str(tiny_data)])
    assert exc.value.code == 2 and "--time N" in capsys.readouterr().err
