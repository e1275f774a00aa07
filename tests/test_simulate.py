"""Simulator: correct against pymatgen and against first principles, clear errors on bad CIFs."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from crystalmela.cli.main import main
from crystalmela.simulation.diffraction import PAPER_D_MIN, reflections
from crystalmela.plugin_api.pattern import PAPER_GRID, GridSpec
from crystalmela.simulation.profiles import ProfileSettings, lp_factor, render, sticks
from crystalmela.simulation.simulate import simulate
from crystalmela.simulation.structure import Crystal, StructureError, operations, read_cif

AL_CIF = """data_al
_cell_length_a 4.0495
_cell_length_b 4.0495
_cell_length_c 4.0495
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_U_iso_or_equiv
Al1 Al 0 0 0 0.0075
"""


def _write(tmp_path, text, name="s.cif"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_matches_pymatgen_on_every_shared_structure(shared_cifs):
    """Peak positions to 1e-3° and relative stick intensities correlating ≥ 0.999 (issue 3)."""
    pytest.importorskip("pymatgen")
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from pymatgen.io.cif import CifParser

    calc = XRDCalculator("CuKa1")
    compared, failures = 0, []
    for path in shared_cifs:
        try:
            crystal = read_cif(path)[0]
        except StructureError:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = CifParser(str(path)).parse_structures(primitive=False)[0]
                ref = calc.get_pattern(structure, scaled=True, two_theta_range=(0, 90))
        except Exception:
            continue  # pymatgen cannot read it: not a comparison
        refl = reflections(crystal, adp=False)
        tt, inten = sticks(refl.d, refl.intensity)
        px, py = np.asarray(ref.x), np.asarray(ref.y)
        # Every pymatgen peak stronger than 0.01 % has one of ours within 1e-3°.
        k = np.clip(np.searchsorted(tt, px), 1, len(tt) - 1)
        dpos = np.minimum(np.abs(tt[k - 1] - px), np.abs(tt[k] - px))[py > 0.01]
        # Our sticks summed onto pymatgen's (it bins coincident peaks at 1e-5°).
        j = np.clip(np.searchsorted(px, tt), 1, len(px) - 1)
        jj = np.where(np.abs(px[j - 1] - tt) < np.abs(px[j] - tt), j - 1, j)
        near = np.abs(px[jj] - tt) < 2e-3
        bucket = np.bincount(jj[near], weights=inten[near], minlength=len(px))
        corr = np.corrcoef(bucket, py)[0, 1] if len(px) > 2 else 1.0
        compared += 1
        if dpos.max() > 1e-3 or corr < 0.999:
            failures.append(f"{path.name}: max Δ2θ {dpos.max():.2e}, r = {corr:.5f}")
    assert compared >= 200, f"only {compared} structures compared"
    assert not failures, "\n".join(failures)


def _expand_to_p1(crystal: Crystal) -> Crystal:
    """The same structure written out in P1 (images deduplicated, Uij rotated): must diffract the same."""
    rot, tran = operations(crystal.hall)
    fract, els, occ, uiso, uani = [], [], [], [], []
    rs = np.array([crystal.unit_cell.reciprocal().a, crystal.unit_cell.reciprocal().b,
                   crystal.unit_cell.reciprocal().c])
    for i, x in enumerate(crystal.fract):
        seen = []
        for r, t in zip(rot, tran):
            y = (r @ x + t) % 1.0
            if any(np.abs(((y - s) + 0.5) % 1.0 - 0.5).max() < 1e-6 for s in seen):
                continue
            seen.append(y)
            fract.append(y)
            els.append(crystal.elements[i])
            occ.append(crystal.occ[i])
            uiso.append(crystal.u_iso[i])
            if crystal.u_aniso is not None:
                u = crystal.u_aniso[i]
                U = np.array([[u[0], u[3], u[4]], [u[3], u[1], u[5]], [u[4], u[5], u[2]]])
                beta = U * np.outer(rs, rs)
                b2 = r @ beta @ r.T
                U2 = b2 / np.outer(rs, rs)
                uani.append((U2[0, 0], U2[1, 1], U2[2, 2], U2[0, 1], U2[0, 2], U2[1, 2]))
    return Crystal(cell=crystal.cell, hall="P 1", elements=els, fract=np.array(fract), occ=occ,
                   u_iso=uiso, u_aniso=np.array(uani) if uani else None)


@pytest.mark.parametrize("hm, cell", [
    ("P 1 21/c 1", (7.1, 8.3, 9.2, 90, 104.3, 90)),
    ("P 21 21 21", (6.2, 7.7, 9.9, 90, 90, 90)),
    ("C 1 2/c 1", (12.1, 6.3, 9.0, 90, 111.0, 90)),
    ("I 41/a:1", (8.0, 8.0, 11.0, 90, 90, 90)),       # inversion centre off the origin
    ("F d -3 m:1", (8.1, 8.1, 8.1, 90, 90, 90)),      # ditto, and F centring
    ("R -3 c:H", (4.76, 4.76, 12.99, 90, 90, 120)),
    ("P 63/m m c", (3.2, 3.2, 5.2, 90, 90, 120)),
    ("P 31 2 1", (4.9, 4.9, 5.4, 90, 90, 120)),
])
@pytest.mark.parametrize("aniso", [False, True])
def test_symmetry_description_equals_p1_expansion(hm, cell, aniso):
    import gemmi
    rng = np.random.default_rng(0)
    n = 3
    fract = rng.random((n, 3))
    fract[0] = (0.0, 0.0, 0.0)  # a special position
    u_aniso = None
    if aniso:
        u_aniso = np.column_stack([rng.uniform(0.01, 0.03, (n, 3)), rng.uniform(-0.003, 0.003, (n, 3))])
        u_aniso[0] = np.nan  # a special position's Uij must obey its site symmetry: keep it isotropic
    crystal = Crystal(cell=cell, hall=gemmi.SpaceGroup(hm).hall, elements=["Fe", "O", "C"],
                      fract=fract, occ=[1.0, 0.7, 1.0], u_iso=[0.01, 0.02, 0.015], u_aniso=u_aniso)
    p1 = _expand_to_p1(crystal)
    a = reflections(crystal, 1.3)
    b = reflections(p1, 1.3)
    # P1 has no extinctions, so it lists absent reflections too: they must be (numerically) zero.
    tt_b, ib = b.d, b.intensity
    idx = np.searchsorted(-tt_b, -a.d)
    np.testing.assert_allclose(tt_b[idx], a.d, rtol=1e-9)
    np.testing.assert_allclose(ib[idx], a.intensity, rtol=2e-4, atol=1e-4 * a.intensity.max())
    absent = np.ones(len(b.d), bool)
    absent[idx] = False
    assert ib[absent].max(initial=0) < 1e-3 * a.intensity.max()


def test_multiplicities_and_absences_fcc(tmp_path):
    refl = reflections(read_cif(_write(tmp_path, AL_CIF))[0])
    hkl = [tuple(sorted(abs(v) for v in h)) for h in refl.hkl]
    assert hkl[:5] == [(1, 1, 1), (0, 0, 2), (0, 2, 2), (1, 1, 3), (2, 2, 2)]
    assert list(refl.multiplicity[:5]) == [8, 6, 12, 24, 8]
    assert all(len({v % 2 for v in h}) == 1 for h in refl.hkl)  # all even or all odd


def test_hexagonal_multiplicities():
    import gemmi
    c = Crystal(cell=(3.0, 3.0, 5.0, 90, 90, 120), hall=gemmi.SpaceGroup("P 6/m m m").hall,
                elements=["Mg"], fract=[[0, 0, 0]], occ=[1], u_iso=[0])
    refl = reflections(c, 1.5)
    mult = {tuple(int(v) for v in h): m for h, m in zip(np.abs(refl.hkl), refl.multiplicity)}
    assert mult[(0, 0, 1)] == 2
    assert mult.get((1, 0, 0), mult.get((0, 1, 0))) == 6


def test_site_multiplicity_special_positions():
    import gemmi
    c = Crystal(cell=(5.64,) * 3 + (90,) * 3, hall=gemmi.SpaceGroup("F m -3 m").hall,
                elements=["Na", "Cl", "O"], fract=[[0, 0, 0], [0.5, 0.5, 0.5], [0.11, 0.23, 0.37]],
                occ=[1, 1, 1], u_iso=[0, 0, 0])
    assert list(c.multiplicities) == [4, 4, 192]
    assert c.formula() == {"Na": 4, "Cl": 4, "O": 192}


def test_profile_area_position_and_ka2():
    grid = PAPER_GRID
    d = np.array([2.0])
    y1 = render(d, np.array([1.0]), grid, normalize=False)
    tt, inten = sticks(d, [1.0])
    assert abs(grid.two_theta[np.argmax(y1)] - tt[0]) <= grid.step / 2
    assert np.isclose(y1.sum() * grid.step, inten[0], rtol=0.02)  # area-normalised shape
    half = y1 >= y1.max() / 2
    assert abs(half.sum() * grid.step - 0.1) <= 2 * grid.step    # FWHM 0.1°
    d = np.array([1.2])  # high angle, so the doublet is resolved
    y1 = render(d, np.array([1.0]), grid, normalize=False)
    y2 = render(d, np.array([1.0]), grid, ProfileSettings(ka2=True), normalize=False)
    tt2, _ = sticks(d, [1.0], wavelength=1.54439)
    i2 = int(round(tt2[0] / grid.step))
    assert y2[i2] > 0.3 * y1.max() and y1[i2] < 0.05 * y1.max()
    assert np.isclose(lp_factor(np.array([90.0]))[0], 1 / (0.5 * np.cos(np.pi / 4)))


@pytest.mark.parametrize("shape", ["pearson7", "pseudo_voigt", "gaussian", "lorentzian"])
def test_every_shape_is_normalised(shape):
    y = render(np.array([3.0]), np.array([1.0]), PAPER_GRID,
               ProfileSettings(shape=shape, fwhm=0.2, window_fwhm=200), normalize=False)
    _, inten = sticks([3.0], [1.0])
    assert np.isclose(y.sum() * PAPER_GRID.step, inten[0], rtol=0.03)


def test_simulate_on_paper_grid_and_other_wavelength(tmp_path):
    path = _write(tmp_path, AL_CIF)
    p = simulate(path)
    assert len(p.x) == 4501 and p.y.max() == pytest.approx(1000)
    assert p.meta["crystal_system"] == "cubic"
    mo = simulate(path, GridSpec(wavelength=0.70930, two_theta_max=40, step=0.01))
    # Same d for the strongest peak: Bragg's law with the other wavelength.
    d_cu = 1.54056 / (2 * np.sin(np.radians(p.x[np.argmax(p.y)] / 2)))
    d_mo = 0.70930 / (2 * np.sin(np.radians(mo.x[np.argmax(mo.y)] / 2)))
    assert d_cu == pytest.approx(d_mo, abs=0.01)


def test_d_min_reaches_ninety_degrees():
    assert 2 * np.degrees(np.arcsin(1.54056 / (2 * PAPER_D_MIN))) == pytest.approx(90.0)


@pytest.mark.parametrize("text, fragment, line", [
    ("data_x\n_cell_length_a 4\n loop_ _a\n 1 2 3 'unterminated\n", "not a readable CIF", 4),
    ("not a cif at all\n", "not a readable CIF", 1),
    (AL_CIF.split("loop_")[0], "no atomic coordinates", None),
    (AL_CIF.replace("Al1 Al", "Q1 Qq"), "unknown element", None),
    (AL_CIF.replace("_cell_length_b 4.0495\n", ""), "cell", None),
    (AL_CIF.replace("'F m -3 m'", "'Q 9 z'"), "not recognised", None),
])
def test_bad_cifs_say_what_and_where(tmp_path, text, fragment, line):
    path = _write(tmp_path, text)
    with pytest.raises(StructureError) as err:
        read_cif(path)
    assert fragment in str(err.value) and str(path) in str(err.value)
    if line is not None:
        assert err.value.line == line


def test_duplicate_tags_tolerated_with_note(tmp_path):
    text = AL_CIF.replace("_cell_angle_alpha 90\n", "_cell_angle_alpha 90\n_chemical_name_common x\n"
                          "_chemical_name_common y\n")
    c = read_cif(_write(tmp_path, text))[0]
    assert any("duplicate" in n for n in c.meta["notes"])


def test_several_blocks_and_block_choice(tmp_path):
    text = AL_CIF + "\n" + AL_CIF.replace("data_al", "data_al2").replace("4.0495", "4.1")
    path = _write(tmp_path, text)
    assert [c.name for c in read_cif(path)] == ["al", "al2"]
    assert read_cif(path, block="al2")[0].cell[0] == pytest.approx(4.1)
    with pytest.raises(StructureError, match="no data block named"):
        read_cif(path, block="nope")


def test_no_symmetry_means_p1_with_note(tmp_path):
    text = AL_CIF.replace("_symmetry_space_group_name_H-M 'F m -3 m'\n", "")
    c = read_cif(_write(tmp_path, text))[0]
    assert c.spacegroup_number == 1 and "P1 assumed" in " ".join(c.meta["notes"])


def test_cli_simulate_round_trips_through_the_xy_reader(tmp_path, capsys):
    from crystalmela.pipeline.reading import read_pattern
    cif = _write(tmp_path, AL_CIF)
    out = tmp_path / "al.xy"
    assert main(["simulate", str(cif), "-o", str(out), "--ka2", "--fwhm", "0.08"]) == 0
    pattern = read_pattern(out)
    assert len(pattern) == 4501 and pattern.wavelength == pytest.approx(1.54056)
    assert main(["simulate", str(cif), "--sticks"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if not r.startswith("#")]
    assert rows[0].split()[-1] == "8"  # (111) multiplicity


@pytest.mark.parametrize("args, fragment", [
    (["--fwhm", "-1"], "fwhm"),
    (["--step", "0.07"], "whole number of steps"),
    (["--wavelength", "30"], "wavelength"),
])
def test_cli_simulate_bad_options(tmp_path, capsys, args, fragment):
    cif = _write(tmp_path, AL_CIF)
    assert main(["simulate", str(cif), *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
