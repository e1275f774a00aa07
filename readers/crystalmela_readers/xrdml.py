"""PANalytical XRDML (XML): ``positions`` (start/end or a list) and ``intensities``/``counts`` per scan,
Kα1 from ``usedWavelength``. Several scans are concatenated."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crystalmela.plugin_api import ReaderError, ReaderSpec

from . import _xml
from ._common import head_text, make_pattern, to_float, unicode_bom

NAME = "xrdml"


def _floats(text: str | None, path: Path, what: str) -> np.ndarray:
    toks = (text or "").split()
    try:
        arr = np.array(toks, dtype=float)
    except ValueError:
        bad = next(t for t in toks if not _ok(t))
        raise ReaderError(path, f"{what}: expected numbers, found {bad!r}", reader=NAME) from None
    if not np.all(np.isfinite(arr)):
        raise ReaderError(path, f"{what}: non-finite value", reader=NAME)
    return arr


def _ok(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def read(path: Path):
    root = _xml.parse(Path(path).read_bytes(), path, NAME)
    if _xml.local(root.tag) != "xrdMeasurements":
        raise ReaderError(path, f"expected an <xrdMeasurements> document, found <{_xml.local(root.tag)}>",
                          reader=NAME)
    wl = None
    ka1 = _xml.find(root, "kAlpha1")
    if ka1 is not None and ka1.text:
        wl = to_float(ka1.text, path, None, NAME, "the kAlpha1 wavelength")
    xs, ys = [], []
    for k, dp in enumerate(_xml.find_all(root, "dataPoints"), 1):
        what = f"scan {k}"
        pos = [p for p in dp if _xml.local(p.tag) == "positions" and p.get("axis", "").lower() == "2theta"]
        inten = next((c for c in dp if _xml.local(c.tag) in ("intensities", "counts")), None)
        if not pos or inten is None:
            raise ReaderError(path, f"{what}: expected <positions axis=\"2Theta\"> and <intensities> or <counts>",
                              reader=NAME)
        y = _floats(inten.text, path, f"{what} intensities")
        att = next((c for c in dp if _xml.local(c.tag) == "beamAttenuationFactors"), None)
        if att is not None and att.text and att.text.split():
            a = _floats(att.text, path, f"{what} attenuation factors")
            if a.size == y.size:
                y = y * a
        lst = _xml.find(pos[0], "listPositions")
        if lst is not None:
            x = _floats(lst.text, path, f"{what} 2θ list")
        else:
            s, e = _xml.find(pos[0], "startPosition"), _xml.find(pos[0], "endPosition")
            if s is None or e is None:
                raise ReaderError(path, f"{what}: 2θ positions need startPosition and endPosition", reader=NAME)
            x0 = to_float(s.text or "", path, None, NAME, "startPosition")
            x1 = to_float(e.text or "", path, None, NAME, "endPosition")
            x = np.linspace(x0, x1, y.size) if y.size > 1 else np.array([x0])
        if x.size != y.size:
            raise ReaderError(path, f"{what}: {x.size} 2θ positions but {y.size} intensities", reader=NAME)
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ReaderError(path, "no <dataPoints> with 2θ data found", reader=NAME)
    return make_pattern(path, NAME, np.concatenate(xs), np.concatenate(ys), wavelength=wl)


def sniff(head: bytes, path: Path) -> float:
    if b"<xrdMeasurements" in head[:4096]:
        return 0.95
    text = head_text(head[:16384]) if unicode_bom(head) else None     # XML saved as UTF-16/32
    return 0.95 if text and "<xrdMeasurements" in text else 0.0


SPEC = ReaderSpec(NAME, (".xrdml",), read, sniff, "PANalytical XRDML (XML)")
