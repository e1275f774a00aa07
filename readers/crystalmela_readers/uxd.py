"""Bruker/Siemens UXD text export: ``_KEY=value`` header lines, ``;`` comments, one or more ranges of
``_COUNTS``/``_CPS`` (intensities on a start/step grid) or ``_2THETACOUNTS``/``_2THETACPS`` (pairs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crystalmela.plugin_api import CrystalmelaError, ReaderError, ReaderSpec, check_wavelength


from ._common import head_text, make_pattern, read_text, to_float

NAME = "bruker_uxd"
_Y_ONLY = {"_COUNTS", "_CPS", "_COUNT"}
_PAIRS = {"_2THETACOUNTS", "_2THETACPS", "_2THETACOUNT", "_2THETA_COUNTS"}


def read(path: Path):
    text = read_text(path, NAME)
    header: dict[str, str] = {}
    rng: dict[str, str] = {}
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    mode = None
    buf: list[float] = []
    start_line = 0

    def flush():
        nonlocal buf, mode
        if mode is None:
            return
        if mode == "y":
            if "_STEPSIZE" not in rng or not ("_START" in rng or "_2THETA" in rng):
                raise ReaderError(path, "counts without _START and _STEPSIZE for their range", line=start_line,
                                  reader=NAME)
            step = to_float(rng["_STEPSIZE"], path, start_line, NAME, "_STEPSIZE")
            start = to_float(rng.get("_START", rng.get("_2THETA")), path, start_line, NAME, "_START")
            n = len(buf)
            if "_STEPCOUNT" in rng:
                expected = int(to_float(rng["_STEPCOUNT"], path, start_line, NAME, "_STEPCOUNT"))
                if expected != n:
                    raise ReaderError(path, f"_STEPCOUNT={expected} but the range holds {n} counts (truncated?)",
                                      line=start_line, reader=NAME)
            xs.append(start + step * np.arange(n))
            ys.append(np.array(buf))
        else:
            if len(buf) % 2:
                raise ReaderError(path, "2θ/count pairs: odd number of values in the range", line=start_line,
                                  reader=NAME)
            arr = np.array(buf).reshape(-1, 2)
            xs.append(arr[:, 0])
            ys.append(arr[:, 1])
        buf, mode = [], None

    for i, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if not s or s.startswith(";"):
            continue
        if s.startswith("_"):
            key, _, val = s.partition("=")
            key = key.strip().upper()
            if key in _Y_ONLY or key in _PAIRS:
                flush()
                mode = "y" if key in _Y_ONLY else "xy"
                start_line = i
                continue
            if mode is not None:
                flush()
                rng = {}
            val = val.strip().strip("'\"")
            if key in ("_WL1", "_WL2", "_ANODE", "_SAMPLE", "_FILEVERSION"):
                header.setdefault(key, val)
            rng[key] = val
            continue
        if mode is None:
            raise ReaderError(path, f"expected a _KEY=value line or a data block, found {s[:40]!r}", line=i,
                              reader=NAME)
        buf.extend(to_float(t, path, i, NAME, "a count") for t in s.split())
    flush()
    if not xs:
        raise ReaderError(path, "no data block (_COUNTS, _CPS or _2THETACOUNTS) found", reader=NAME)
    wl = header.get("_WL1") or rng.get("_WL1")
    wavelength = to_float(wl, path, None, NAME, "_WL1") if wl else None
    if wavelength is not None:
        try:
            check_wavelength(wavelength, "_WL1")
        except CrystalmelaError as exc:
            raise ReaderError(path, str(exc), reader=NAME) from None
    return make_pattern(path, NAME, np.concatenate(xs), np.concatenate(ys), wavelength=wavelength,
                        meta={k.lstrip("_").lower(): v for k, v in header.items()})


def sniff(head: bytes, path: Path) -> float:
    text = head_text(head)
    if not text:
        return 0.0
    up = text.upper()
    keys = sum(k in up for k in ("_FILEVERSION", "_STEPSIZE", "_START", "_WL1", "_COUNTS", "_2THETA"))
    return 0.95 if keys >= 3 else 0.0


SPEC = ReaderSpec(NAME, (".uxd",), read, sniff, "Bruker/Siemens UXD text export (one or more ranges)")
