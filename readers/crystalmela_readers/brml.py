"""Bruker BRML: a zip holding ``Experiment*/RawData*.xml``. Each ``<DataRoute>`` is a range; each
``<Datum>`` a comma-separated row whose columns the ``<DataViews>`` describe (``Start`` index); the 2θ
column is the view naming TwoTheta, the counts the view naming a counter (else the last column)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from crystalmela.plugin_api import ReaderError, ReaderSpec

from . import _xml, _zip
from ._common import make_pattern, to_float

NAME = "bruker_brml"
_RAW = re.compile(r"(^|/)RawData\d*\.xml$", re.I)


def _columns(route) -> tuple[int | None, int | None]:
    tt = cnt = None
    for view in _xml.find_all(route, "RawDataView"):
        start = view.get("Start")
        if start is None or not start.isdigit():
            continue
        blob = " ".join([view.get(k, "") for k in view.keys()] + [" ".join(el.get("Name", "") + " " +
                        (el.get("LogicName") or "") + " " + (el.text or "") for el in view.iter())]).lower()
        if "twotheta" in blob and tt is None:
            tt = int(start)
        elif "counter" in blob and cnt is None:
            cnt = int(start)
    return tt, cnt


def read(path: Path):
    with _zip.Archive(path, NAME) as zf:
        members = sorted(n for n in zf.names() if _RAW.search(n))
        if not members:
            raise ReaderError(path, "no Experiment*/RawData*.xml inside: not a BRML file", reader=NAME)
        xs, ys, wl = [], [], None
        for m in members:
            root = _xml.parse(zf.read(m), path, NAME, member=m)
            if wl is None:
                el = _xml.find(root, "WaveLengthAlpha1")
                if el is not None and el.get("Value"):
                    wl = to_float(el.get("Value"), path, None, NAME, "WaveLengthAlpha1")
            routes = _xml.find_all(root, "DataRoute") or [root]
            for r_i, route in enumerate(routes, 1):
                tt_col, cnt_col = _columns(route)
                rows = []
                for d_i, datum in enumerate(_xml.find_all(route, "Datum"), 1):
                    vals = [v for v in (datum.text or "").split(",")]
                    try:
                        rows.append([float(v) for v in vals])
                    except ValueError:
                        raise ReaderError(path, f"{m}, range {r_i}, <Datum> {d_i}: expected comma-separated "
                                                f"numbers, found {(datum.text or '')[:50]!r}", reader=NAME) from None
                if not rows:
                    continue
                width = min(len(r) for r in rows)
                tt = 2 if tt_col is None else tt_col
                cnt = width - 1 if cnt_col is None else cnt_col
                if width <= max(tt, cnt):
                    raise ReaderError(path, f"{m}, range {r_i}: <Datum> rows have {width} columns; need "
                                            f"2θ in column {tt + 1} and counts in column {cnt + 1}", reader=NAME)
                arr = np.array([[r[tt], r[cnt]] for r in rows])
                xs.append(arr[:, 0])
                ys.append(arr[:, 1])
    if not xs:
        raise ReaderError(path, "no <Datum> rows in any RawData*.xml", reader=NAME)
    return make_pattern(path, NAME, np.concatenate(xs), np.concatenate(ys), wavelength=wl)


def sniff(head: bytes, path: Path) -> float:
    return 0.95 if _zip.sniff_members(head, path, lambda n: bool(_RAW.search(n))) else 0.0


SPEC = ReaderSpec(NAME, (".brml",), read, sniff, "Bruker BRML (zipped XML, DIFFRAC.SUITE)")
