"""Bruker/Siemens binary RAW files.

- v1 (magic ``RAW ``, DIFFRAC-AT): 156-byte range header: steps (uint32 @4), step (float32 @12),
  2θ start (float32 @24), Kα1/Kα2 (float32 @72/76); float32 counts follow. Checked against a real file
  and its UXD export (tests).
- v2 (``RAW2``) and v3 (``RAW1.01``, DIFFRAC plus): layouts as published by xylib/GSAS-II (v3: 712-byte
  file header, range count uint32 @12, Kα1 float64 @624; 304-byte range headers with steps @4, 2θ start
  float64 @16, step float64 @176, supplementary-header size @256). No real sample was available: tested
  on files written to that layout.
- v4 (``RAW4.00``, DIFFRAC.SUITE) is refused with a clear message: export to BRML, UXD or XY.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from crystalmela.plugin_api import ReaderError, ReaderSpec

from ._common import make_pattern

NAME = "bruker_raw"


def _need(data: bytes, path: Path, at: int, n: int, what: str) -> None:
    if at + n > len(data):
        raise ReaderError(path, f"file ends at byte {len(data)} inside {what} (needs {at + n}): truncated?",
                          offset=len(data), reader=NAME)


def _float_data(data: bytes, path: Path, at: int, steps: int, what: str) -> np.ndarray:
    _need(data, path, at, 4 * steps, what)
    return np.frombuffer(data, "<f4", steps, at).astype(float)


def _check_range(path, at, steps, start, step, maxsteps=10_000_000):
    if not (0 < steps <= maxsteps):
        raise ReaderError(path, f"range header gives {steps} steps; expected 1–{maxsteps}", offset=at, reader=NAME)
    if not (np.isfinite(start) and np.isfinite(step) and step > 0 and -10 < start < 180):
        raise ReaderError(path, f"range header gives 2θ start {start:g}, step {step:g}; expected start in "
                                "0–180° and a positive step", offset=at, reader=NAME)


def _v1(data: bytes, path: Path):
    xs, ys, pos, wl = [], [], 0, None
    while pos < len(data):
        base = pos if data[pos:pos + 4] == b"RAW " else pos - 4  # later ranges may omit the magic
        _need(data, path, base, 156, "a range header")
        steps, = struct.unpack_from("<I", data, base + 4)
        step, = struct.unpack_from("<f", data, base + 12)
        start, = struct.unpack_from("<f", data, base + 24)
        _check_range(path, base, steps, start, step)
        if wl is None:
            ka1, = struct.unpack_from("<f", data, base + 72)
            wl = round(float(ka1), 6) if 0.1 <= ka1 <= 5 else None
        ys.append(_float_data(data, path, base + 156, steps, "the counts"))
        xs.append(start + step * np.arange(steps))
        pos = base + 156 + 4 * steps
    return xs, ys, wl


def _v2(data: bytes, path: Path):
    _need(data, path, 0, 256, "the file header")
    nrange, = struct.unpack_from("<H", data, 4)
    ka1, = struct.unpack_from("<f", data, 190)
    xs, ys, pos = [], [], 256
    for r in range(nrange):
        _need(data, path, pos, 48, f"range {r + 1} header")
        hlen, steps = struct.unpack_from("<HH", data, pos)
        step, start = struct.unpack_from("<ff", data, pos + 12)
        if hlen < 48:
            raise ReaderError(path, f"range header length {hlen} < 48", offset=pos, reader=NAME)
        _check_range(path, pos, steps, start, step)
        ys.append(_float_data(data, path, pos + hlen, steps, f"range {r + 1} counts"))
        xs.append(start + step * np.arange(steps))
        pos += hlen + 4 * steps
    return xs, ys, round(float(ka1), 6) if 0.1 <= ka1 <= 5 else None


def _v3(data: bytes, path: Path):
    _need(data, path, 0, 712, "the file header")
    nrange, = struct.unpack_from("<I", data, 12)
    ka1, = struct.unpack_from("<d", data, 624)
    if nrange > 10_000:
        raise ReaderError(path, f"file header gives {nrange} ranges", offset=12, reader=NAME)
    xs, ys, pos = [], [], 712
    for r in range(nrange):
        _need(data, path, pos, 304, f"range {r + 1} header")
        hlen, steps = struct.unpack_from("<II", data, pos)
        start, = struct.unpack_from("<d", data, pos + 16)
        step, = struct.unpack_from("<d", data, pos + 176)
        supp, = struct.unpack_from("<I", data, pos + 256)
        if hlen != 304:
            raise ReaderError(path, f"range header length {hlen}, expected 304", offset=pos, reader=NAME)
        _check_range(path, pos, steps, start, step)
        at = pos + hlen + supp
        ys.append(_float_data(data, path, at, steps, f"range {r + 1} counts"))
        xs.append(start + step * np.arange(steps))
        pos = at + 4 * steps
    return xs, ys, round(float(ka1), 6) if 0.1 <= ka1 <= 5 else None


def read(path: Path):
    data = Path(path).read_bytes()
    magic = data[:8]
    if magic.startswith(b"RAW4.00"):
        raise ReaderError(path, "Bruker RAW v4 (RAW4.00) is not supported yet; export the scan as BRML, UXD "
                                "or XY from DIFFRAC.EVA", offset=0, reader=NAME)
    if magic.startswith(b"RAW1.01"):
        xs, ys, wl = _v3(data, path)
    elif magic.startswith(b"RAW2"):
        xs, ys, wl = _v2(data, path)
    elif magic.startswith(b"RAW "):
        xs, ys, wl = _v1(data, path)
    else:
        raise ReaderError(path, f"expected a Bruker RAW magic ('RAW ', 'RAW2', 'RAW1.01'), found {magic[:7]!r}",
                          offset=0, reader=NAME)
    if not xs:
        raise ReaderError(path, "no ranges in file", reader=NAME)
    return make_pattern(path, NAME, np.concatenate(xs), np.concatenate(ys), wavelength=wl,
                        meta={"version": magic[:7].decode("latin-1").strip()})


def sniff(head: bytes, path: Path) -> float:
    return 1.0 if head[:4] in (b"RAW ", b"RAW2") or head[:7] in (b"RAW1.01", b"RAW4.00") else 0.0


SPEC = ReaderSpec(NAME, (".raw",), read, sniff, "Bruker/Siemens binary RAW v1–v3 (v4: clear refusal)")
