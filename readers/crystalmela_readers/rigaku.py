"""Rigaku RAS (text: ``*KEY "value"`` header, ``*RAS_INT_START`` … ``*RAS_INT_END`` rows of
2θ, counts, attenuator factor) and RASX (zip with ``Data*/Profile*.txt`` rows and an XML with
``WavelengthKalpha1``). Intensity = counts × attenuator factor."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from crystalmela.plugin_api import ReaderError, ReaderSpec

from . import _xml, _zip
from ._common import decode, head_text, make_pattern, read_text, to_float

RAS, RASX = "rigaku_ras", "rigaku_rasx"
_PROFILE = re.compile(r"(^|/)Profile\d*\.txt$", re.I)


def _rows(lines, path, reader, first_line, sep=None):
    x, y = [], []
    for no, line in enumerate(lines, first_line):
        s = line.strip()
        if not s:
            continue
        v = s.split(sep) if sep else s.split()
        if len(v) < 2:
            raise ReaderError(path, f"expected '2θ counts [attenuation]', found {s[:40]!r}", line=no, reader=reader)
        att = to_float(v[2], path, no, reader, "an attenuator factor") if len(v) > 2 else 1.0
        x.append(to_float(v[0], path, no, reader, "2θ"))
        y.append(to_float(v[1], path, no, reader, "a count") * att)
    return x, y


def read_ras(path: Path):
    text = read_text(path, RAS)
    lines = text.splitlines()
    head: dict[str, str] = {}
    x, y = [], []
    i = 0
    found = False
    while i < len(lines):
        s = lines[i].strip()
        if s.startswith("*RAS_INT_START"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("*RAS_INT_END"):
                j += 1
            if j == len(lines):
                raise ReaderError(path, "*RAS_INT_START without *RAS_INT_END: truncated?", line=i + 1, reader=RAS)
            bx, by = _rows(lines[i + 1:j], path, RAS, i + 2)
            x += bx
            y += by
            found = True
            i = j + 1
            continue
        if s.startswith("*"):
            key, _, val = s[1:].partition(" ")
            head.setdefault(key, val.strip().strip('"'))
        i += 1
    if not found:
        raise ReaderError(path, "no *RAS_INT_START block: not a Rigaku RAS file", reader=RAS)
    wl = head.get("HW_XG_WAVE_LENGTH_ALPHA1")
    axis = head.get("MEAS_SCAN_AXIS_X", "")
    if axis and "theta" not in axis.lower():
        raise ReaderError(path, f"scan axis is {axis!r}; expected a 2θ scan", reader=RAS)
    return make_pattern(path, RAS, x, y, wavelength=to_float(wl, path, None, RAS, "a wavelength") if wl else None,
                        meta={"sample": head.get("FILE_SAMPLE", ""), "scan_axis": axis})


def read_rasx(path: Path):
    with _zip.Archive(path, RASX) as zf:
        profiles = sorted(n for n in zf.names() if _PROFILE.search(n))
        if not profiles:
            raise ReaderError(path, "no Data*/Profile*.txt inside: not a RASX file", reader=RASX)
        x, y = [], []
        for m in profiles:
            text = decode(zf.read(m), path, RASX)
            try:
                bx, by = _rows(text.splitlines(), path, RASX, 1, sep="\t" if "\t" in text else None)
            except ReaderError as exc:
                raise ReaderError(path, f"{m} line {exc.line}: {exc.reason}", reader=RASX) from None
            x += bx
            y += by
        wl = None
        for n in zf.names():
            if n.lower().endswith(".xml") and wl is None:
                data = zf.read(n)
                if b"WavelengthKalpha1" in data:
                    el = _xml.find(_xml.parse(data, path, RASX, member=n), "WavelengthKalpha1")
                    if el is not None and el.text:
                        wl = to_float(el.text, path, None, RASX, "WavelengthKalpha1")
    return make_pattern(path, RASX, x, y, wavelength=wl)


def sniff_ras(head: bytes, path: Path) -> float:
    text = head_text(head)
    return 0.95 if text and "*RAS_DATA_START" in text[:2000] else 0.0


def sniff_rasx(head: bytes, path: Path) -> float:
    return 0.95 if _zip.sniff_members(head, path, lambda n: bool(_PROFILE.search(n))) else 0.0


SPECS = [ReaderSpec(RAS, (".ras",), read_ras, sniff_ras, "Rigaku RAS text"),
         ReaderSpec(RASX, (".rasx",), read_rasx, sniff_rasx, "Rigaku RASX (zip, SmartLab Studio II)")]
