"""Readers: known values on real instrument files, round trips for every format, and bad input."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import crystalmela as cm
from crystalmela.pipeline.reading import read_pattern
from writers import CASES, X, Y


# ---- real files -------------------------------------------------------------------------------

def test_bruker_raw_v1_matches_its_uxd_export(real):
    raw = read_pattern(real / "LiCoO2.RAW")
    uxd = read_pattern(real / "LiCoO2.UXD")
    assert raw.reader == "bruker_raw" and uxd.reader == "bruker_uxd"
    assert len(raw) == len(uxd) == 4001
    np.testing.assert_allclose(raw.x, uxd.x, atol=1e-4)
    np.testing.assert_array_equal(raw.y, uxd.y)
    assert raw.x[0] == pytest.approx(15.985, abs=1e-4) and raw.x[-1] == pytest.approx(135.985, abs=1e-3)
    assert raw.wavelength == pytest.approx(1.5406) and uxd.wavelength == pytest.approx(1.5406)
    assert raw.y[:4].tolist() == [649, 609, 622, 618]


def test_fullprof_free_format_same_counts_as_raw(real):
    dat = read_pattern(real / "LiCoO2.dat")
    raw = read_pattern(real / "LiCoO2.RAW")
    assert dat.reader == "fullprof"
    assert dat.x[0] == 16.0 and dat.x[1] - dat.x[0] == pytest.approx(0.03)
    np.testing.assert_array_equal(dat.y, raw.y)


def test_fullprof_title_after_header(real):
    p = read_pattern(real / "tbbaco.dat")
    assert p.reader == "fullprof" and len(p) == 5253
    assert p.x[0] == 15.0 and p.x[-1] == pytest.approx(120.04)
    assert p.y[:3].tolist() == [586, 581, 605] and p.y[-1] == 110
    assert "Tb2BaCoO5" in p.meta["title"]


def test_fullprof_ill_d1a_layout_with_wavelength_in_title(real):
    p = read_pattern(real / "lmo.dat")
    assert p.reader == "fullprof" and p.meta["layout"] == "ILL D1A/D2B"
    assert p.wavelength == pytest.approx(1.2272)
    assert p.x[1] - p.x[0] == pytest.approx(0.05) and p.x[0] == 0.0
    assert p.y[:4].tolist() == [15, 17, 14, 8] and p.y[-1] == 34


def test_two_column_dat_goes_to_xy_reader(real):
    p = read_pattern(real / "dsmo.dat")
    assert p.reader == "xy" and len(p) == 5501
    assert (p.x[0], p.y[0]) == (10.0, 421.0)


# ---- round trips for every format --------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip(case, tmp_path):
    writer, fname, reader, scale = CASES[case]
    path = tmp_path / fname
    writer(path)
    p = read_pattern(path)
    assert p.reader == reader, f"{case} read by {p.reader}"
    np.testing.assert_allclose(p.x, X, atol=2e-4)
    np.testing.assert_allclose(p.y, Y * scale, rtol=1e-6, atol=1e-3 * scale)


@pytest.mark.parametrize("case", ["raw_v1", "xrdml", "brml", "ras", "rasx", "uxd", "cif_loop", "chi_pyfai"])
def test_wavelength_read_from_file(case, tmp_path):
    writer, fname, _, _ = CASES[case]
    writer(tmp_path / fname)
    assert read_pattern(tmp_path / fname).wavelength == pytest.approx(1.5406, abs=2e-4)


@pytest.mark.parametrize("case", ["xy", "xrdml", "gsas_std", "brml"])
def test_wrong_extension_falls_back_to_content(case, tmp_path):
    writer, _, reader, _ = CASES[case]
    path = tmp_path / "measured.txt"
    writer(path)
    assert read_pattern(path).reader == reader


def test_explicit_reader_wins(tmp_path):
    CASES["fullprof"][0](tmp_path / "a.dat")
    with pytest.raises(cm.ReaderError, match=r"\[xy\]"):
        read_pattern(tmp_path / "a.dat", reader="xy")
    with pytest.raises(cm.UnknownModelError, match="unknown reader 'nope'"):
        read_pattern(tmp_path / "a.dat", reader="nope")


def test_xy_comments_blank_lines_and_inline_comments(tmp_path):
    p = tmp_path / "c.xy"
    p.write_text("# exported by X\n! another\n\n10.0 5  # first\n10.1 6\n\n10.2 7\n")
    pat = read_pattern(p)
    assert pat.x.tolist() == [10.0, 10.1, 10.2] and pat.y.tolist() == [5, 6, 7]


def test_xy_pyfai_q_axis_in_inverse_nm(tmp_path):
    p = tmp_path / "q.xy"
    p.write_text("# Unit: q_nm^-1\n# Wavelength: 7.093e-11 m\n10 5\n20 6\n30 7\n")
    pat = read_pattern(p)
    assert pat.axis == "q" and pat.x.tolist() == [1.0, 2.0, 3.0]
    assert pat.wavelength == pytest.approx(0.7093)


# ---- malformed input: one clear ReaderError naming the file and where -----------------------------

def _text_cases():
    return [("xy", "a.xy"), ("fullprof", "a.dat"), ("uxd", "a.uxd"), ("gsas_std", "a.gsa"), ("ras", "a.ras"),
            ("chi_fit2d", "a.chi"), ("cif_loop", "a.cif"), ("xrdml", "a.xrdml")]


TEXT_ENCODINGS = {
    "CR-only line ends": lambda raw: raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r"),
    "UTF-16 with BOM": lambda raw: raw.decode("latin-1").encode("utf-16"),
    "UTF-16BE with BOM": lambda raw: b"\xfe\xff" + raw.decode("latin-1").encode("utf-16-be"),
    "UTF-32 with BOM": lambda raw: raw.decode("latin-1").encode("utf-32"),
}


@pytest.mark.parametrize("encoding", TEXT_ENCODINGS)
@pytest.mark.parametrize("case,fname", [c for c in _text_cases() if c[0] != "xrdml"])
def test_text_files_read_whatever_the_line_ends_and_unicode_encoding(case, fname, encoding, tmp_path):
    """Were refused as 'no reader recognises' (old Mac line ends, Windows "Unicode" text)."""
    writer, _, reader, scale = CASES[case]
    path = tmp_path / fname
    writer(path)
    path.write_bytes(TEXT_ENCODINGS[encoding](path.read_bytes()))
    p = read_pattern(path)
    assert p.reader == reader
    np.testing.assert_allclose(p.y, Y * scale, rtol=1e-6, atol=1e-3 * scale)


@pytest.mark.parametrize("codec", ["UTF-16", "UTF-32"])
def test_xrdml_saved_as_utf16_or_utf32(codec, tmp_path):
    """expat reads UTF-16 itself; UTF-32 the reader decodes first."""
    from writers import xrdml
    path = tmp_path / "a.xrdml"
    xrdml(path)
    path.write_bytes(path.read_text().replace('encoding="UTF-8"', f'encoding="{codec}"').encode(codec.lower()))
    p = read_pattern(path)
    assert p.reader == "xrdml" and p.y.tolist() == Y.tolist()


def test_xy_with_more_comments_than_the_sniffed_head(tmp_path):
    from writers import xy
    path = tmp_path / "a.xy"
    xy(path)
    path.write_text("# instrument log line, padded to a hundred characters ....................\n" * 1000
                    + path.read_text())
    assert path.stat().st_size > 64 * 1024
    p = read_pattern(path)
    assert p.reader == "xy" and len(p) == len(X)


def test_fortran_double_precision_exponents(tmp_path):
    path = tmp_path / "fortran.xy"
    path.write_text("".join(f"{x / 10:.6f}D+01 {y / 100:.4f}D+02\n" for x, y in zip(X, Y)))
    p = read_pattern(path)
    np.testing.assert_allclose(p.x, X, atol=1e-6)
    np.testing.assert_allclose(p.y, Y, rtol=1e-6)


@pytest.mark.parametrize("wl", ["0", "-1.5406", "15.406"])
def test_uxd_impossible_wavelength_is_the_readers_own_error(wl, tmp_path):
    from writers import uxd
    path = tmp_path / "a.uxd"
    uxd(path)
    path.write_text(path.read_text().replace("_WL1=1.540600", f"_WL1={wl}"))
    with pytest.raises(cm.ReaderError, match=r"\[bruker_uxd\] _WL1 .* is outside 0\.1–5 Å") as e:
        read_pattern(path)
    assert "unexpectedly" not in str(e.value)


@pytest.mark.parametrize("scale", [1e300, 1e-310])
def test_huge_and_tiny_counts_regrid_without_a_nan_from_nowhere(scale):
    """Overflow in the running integral used to surface as 'intensity value at point 1 is nan'."""
    g = cm.Pattern(X, Y * scale).to_grid()
    assert np.isfinite(g.y).all() and g.y.max() == pytest.approx(1000)
    np.testing.assert_allclose(g.y, cm.Pattern(X, Y).to_grid().y, atol=1e-5)


@pytest.mark.parametrize("ext", sorted({e for c in CASES.values() for e in [c[1][1:]]}))
def test_empty_file(ext, tmp_path):
    p = tmp_path / f"empty{ext}"
    p.write_bytes(b"")
    with pytest.raises(cm.ReaderError, match="file is empty"):
        read_pattern(p)


@pytest.mark.parametrize("ext", sorted({c[1][1:] for c in CASES.values()} | {".bin", ""}))
def test_binary_garbage(ext, tmp_path):
    p = tmp_path / f"garbage{ext}"
    p.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(cm.ReaderError) as e:
        read_pattern(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("case,fname", _text_cases())
def test_text_in_numbers_names_the_line(case, fname, tmp_path):
    writer = CASES[case][0]
    path = tmp_path / fname
    writer(path)
    lines = path.read_text().splitlines()
    # corrupt a data line in the middle with text
    k = max(range(len(lines)), key=lambda i: sum(ch.isdigit() for ch in lines[i]) - (i == 0) * 1e9)
    lines[k] = lines[k].replace("0", "O", 2) if "0" in lines[k] else lines[k] + " x"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(cm.ReaderError) as e:
        read_pattern(path, reader=CASES[case][2])
    msg = str(e.value)
    assert str(path) in msg
    if case not in ("xrdml",):
        assert e.value.line is not None or "value" in msg


@pytest.mark.parametrize("token", ["nan", "NaN", "inf", "-inf"])
def test_xy_non_finite_refused_with_line(token, tmp_path):
    p = tmp_path / "n.xy"
    p.write_text(f"10.0 5\n10.1 {token}\n10.2 7\n")
    with pytest.raises(cm.ReaderError) as e:
        read_pattern(p)
    assert e.value.line == 2 and "non-finite" in str(e.value)


def test_xy_one_column(tmp_path):
    p = tmp_path / "one.xy"
    p.write_text("\n".join(str(i) for i in range(100)))
    with pytest.raises(cm.ReaderError, match="only one column"):
        read_pattern(p, reader="xy")


def test_xy_short_line_in_data(tmp_path):
    p = tmp_path / "short.xy"
    p.write_text("10 1\n11 2\n12\n13 4\n")
    with pytest.raises(cm.ReaderError, match="expected at least 2 numbers") as e:
        read_pattern(p)
    assert e.value.line == 3


@pytest.mark.parametrize("case", ["fullprof", "uxd", "gsas_std", "gsas_esd", "chi_fit2d", "ras"])
def test_truncated_text_file(case, tmp_path):
    writer, fname, reader, _ = CASES[case]
    path = tmp_path / fname
    writer(path)
    lines = path.read_text().splitlines()
    cut = lines[: len(lines) // 2]
    if case == "chi_fit2d":
        cut = lines[:4] + lines[4:40]
    path.write_text("\n".join(cut) + "\n")
    with pytest.raises(cm.ReaderError, match="truncated"):
        read_pattern(path)


@pytest.mark.parametrize("case", ["raw_v1", "raw_v2", "raw_v3"])
@pytest.mark.parametrize("keep", [0.5, 0.99, 60 / 1000])
def test_truncated_binary_raw(case, keep, tmp_path):
    writer, fname, _, _ = CASES[case]
    path = tmp_path / fname
    writer(path)
    data = path.read_bytes()
    path.write_bytes(data[: max(8, int(len(data) * keep))])
    with pytest.raises(cm.ReaderError, match="truncated|ends at byte") as e:
        read_pattern(path)
    assert e.value.offset is not None


@pytest.mark.parametrize("case", ["brml", "rasx"])
def test_truncated_zip(case, tmp_path):
    writer, fname, _, _ = CASES[case]
    path = tmp_path / fname
    writer(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(cm.ReaderError):
        read_pattern(path)


def test_raw_v4_refused_clearly(tmp_path):
    p = tmp_path / "new.raw"
    p.write_bytes(b"RAW4.00" + bytes(1000))
    with pytest.raises(cm.ReaderError, match="v4.*not supported yet"):
        read_pattern(p)


def test_raw_absurd_header(tmp_path):
    CASES["raw_v1"][0](tmp_path / "a.raw")
    data = bytearray((tmp_path / "a.raw").read_bytes())
    data[12:16] = np.float32(-1).tobytes()
    (tmp_path / "a.raw").write_bytes(bytes(data))
    with pytest.raises(cm.ReaderError, match="positive step"):
        read_pattern(tmp_path / "a.raw")


def test_xml_bomb_refused(tmp_path):
    p = tmp_path / "bomb.xrdml"
    p.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                 "<xrdMeasurements>&b;</xrdMeasurements>")
    with pytest.raises(cm.ReaderError, match="unsafe XML"):
        read_pattern(p)


def test_malformed_xml(tmp_path):
    p = tmp_path / "bad.xrdml"
    p.write_text("<xrdMeasurements><xrdMeasurement>")
    with pytest.raises(cm.ReaderError, match="malformed XML"):
        read_pattern(p)


def test_zip_without_members(tmp_path):
    p = tmp_path / "x.brml"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(cm.ReaderError, match="not a BRML"):
        read_pattern(p, reader="bruker_brml")


def _bomb(path: Path, member: str, size: int, lie: bool = False) -> None:
    """A zip whose ``member`` unpacks to ``size`` bytes of one repeated XML line (it compresses about
    1000-fold); ``lie``: its headers declare 100 bytes."""
    line = b"<Datum>1,1,20.0000,10.0000,1234</Datum>\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, b"<RawData><DataRoute>" + line * (size // len(line)) + b"</DataRoute></RawData>")
    if lie:
        data = bytearray(path.read_bytes())
        for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            i = data.index(sig)
            data[i + at:i + at + 4] = (100).to_bytes(4, "little")    # uncompressed size field
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("lie", [False, True])
@pytest.mark.parametrize("case", [("x.brml", "Experiment0/RawData0.xml"), ("x.rasx", "Data0/Profile0.txt")])
def test_zip_bombs_are_refused_within_the_unpacking_budget(case, lie, tmp_path, monkeypatch):
    """A member that unpacks past the budget (a quarter of the file limit) is refused while it
    streams, whatever its header declares; memory stays near the budget, not the member's size."""
    import tracemalloc
    name, member = case
    monkeypatch.setenv("CRYSTALMELA_MAX_FILE_MB", "4")              # budget 1 MB
    _bomb(tmp_path / name, member, 50_000_000, lie)
    assert (tmp_path / name).stat().st_size < 500_000
    tracemalloc.start()
    try:
        with pytest.raises(cm.ReaderError, match="unpack|more than 1 MB") as e:
            read_pattern(tmp_path / name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000
    assert "unexpectedly" not in str(e.value)
    if not lie:
        assert "more than 1 MB (a quarter of CRYSTALMELA_MAX_FILE_MB)" in str(e.value)


def test_the_unpacking_budget_is_shared_by_all_members(tmp_path, monkeypatch):
    """Many members each under the budget but over it together: refused at the member that spends it."""
    monkeypatch.setenv("CRYSTALMELA_MAX_FILE_MB", "4")
    p = tmp_path / "many.brml"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(5):
            z.writestr(f"Experiment0/RawData{i}.xml", b"<RawData>" + b" " * 400_000 + b"</RawData>")
    with pytest.raises(cm.ReaderError, match=r"RawData2\.xml: the archive unpacks to more than 1 MB"):
        read_pattern(p)


def test_an_archive_listing_too_many_members_is_refused_unread(tmp_path):
    p = tmp_path / "crowd.brml"
    with zipfile.ZipFile(p, "w") as z:
        for i in range(300):
            z.writestr(f"Experiment0/RawData{i}.xml", b"<RawData/>")
    with pytest.raises(cm.ReaderError, match="lists 300 members; at most 256 are read"):
        read_pattern(p)


def test_an_encrypted_member_is_the_readers_own_error(tmp_path):
    """zipfile raises RuntimeError for an encrypted member: reported as BRML's error, not a crash."""
    p = tmp_path / "locked.brml"
    CASES["brml"][0](p)
    data = bytearray(p.read_bytes())
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):       # general-purpose flags: bit 0
        i = data.index(sig)
        data[i + at] |= 1
    p.write_bytes(bytes(data))
    with pytest.raises(cm.ReaderError, match="cannot unpack .*encrypted") as e:
        read_pattern(p)
    assert e.value.reader == "bruker_brml" and "unexpectedly" not in str(e.value)


def test_structure_cif_has_no_pattern(tmp_path):
    p = tmp_path / "nacl.cif"
    p.write_text("data_NaCl\n_cell_length_a 5.64\n_symmetry_space_group_name_H-M 'F m -3 m'\n")
    with pytest.raises(cm.ReaderError, match="no powder data"):
        read_pattern(p)


def test_cif_syntax_error_names_line(tmp_path):
    p = tmp_path / "broken.cif"
    p.write_text("data_x\n_pd_meas_2theta_scan 1\nloop_\n_a\n_b\n1 2\n'unclosed\n")
    with pytest.raises(cm.ReaderError, match="CIF syntax error"):
        read_pattern(p)


def test_gsas_tof_bank_refused(tmp_path):
    p = tmp_path / "tof.gsa"
    p.write_text("tof\nBANK 1 100 10 RALF 1000 10 0 0 ALT\n" + "1\n" * 10)
    with pytest.raises(cm.ReaderError, match="constant-wavelength") as e:
        read_pattern(p)
    assert e.value.line == 2


def test_huge_file_refused_before_reading(tmp_path):
    p = tmp_path / "huge.xy"
    with open(p, "wb") as fh:  # 200 MB sparse file: costs no disk, nothing is read
        fh.truncate(200_000_000)
    with pytest.raises(cm.ReaderError, match="200 MB, over the 100 MB limit"):
        read_pattern(p)


def test_size_limit_is_a_setting(tmp_path, monkeypatch, xy_file):
    monkeypatch.setenv("CRYSTALMELA_MAX_FILE_MB", "0.001")
    with pytest.raises(cm.ReaderError, match="limit"):
        read_pattern(xy_file)
    monkeypatch.setenv("CRYSTALMELA_MAX_FILE_MB", "lots")
    with pytest.raises(cm.CrystalmelaError, match="not a number"):
        read_pattern(xy_file)


def test_unrecognised_content_lists_every_reader(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("Dear diary,\ntoday I measured nothing.\n")
    with pytest.raises(cm.NoReaderError) as e:
        read_pattern(p)
    for name in ("xy", "fullprof", "bruker_raw", "xrdml", "gsas", "cif_powder"):
        assert name in str(e.value)


def test_directory_and_missing(tmp_path):
    with pytest.raises(cm.ReaderError, match="is a directory"):
        read_pattern(tmp_path)
    with pytest.raises(cm.ReaderError, match="no such file"):
        read_pattern(tmp_path / "missing.xy")


@pytest.mark.parametrize("content,expect", [
    (b"", "file is empty"),
    (bytes(range(256)) * 8, ""),
    (b"10 nan\n11 2\n12 3\n", "non-finite"),
])
def test_cli_bad_input_one_line_exit_2_no_traceback(content, expect, tmp_path):
    p = tmp_path / "bad.xy"
    p.write_bytes(content)
    r = subprocess.run([sys.executable, "-m", "crystalmela", "predict", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and str(p) in err[0] and expect in err[0]
