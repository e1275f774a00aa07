"""GSAS raw data (constant-wavelength banks): ``BANK`` line ``BANK n npts nrec CONS start step 0 0 TYPE``
with 2θ in centidegrees, then records in STD ``10(I2,F6.0)``, ESD ``5(F8.0,F8.0)``, ALT
``4(F8.0,F7.4,F5.4)`` (2θ × 3200) or FXYE (free-format 2θ centideg, y, esd per line).

Only the first bank is read (a note says when there are more); time-of-flight banks (RALF, SLOG, TIME_MAP)
are refused because the models need angle-dispersive data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crystalmela.plugin_api import ReaderError, ReaderSpec

from ._common import head_text, make_pattern, read_text, to_float, wavelength_in

NAME = "gsas"


def _fields(line: str, width: int, count: int) -> list[str]:
    line = line.rstrip("\n\r")
    return [line[i:i + width] for i in range(0, min(len(line), width * count), width)]


def read(path: Path):
    text = read_text(path, NAME)
    lines = text.splitlines()
    title = lines[0].strip() if lines else ""
    banks = [i for i, ln in enumerate(lines) if ln.startswith("BANK")]
    if not banks:
        raise ReaderError(path, "no 'BANK' line: expected a GSAS raw file", reader=NAME)
    b = banks[0]
    toks = lines[b].split()
    ln_no = b + 1
    if len(toks) < 5:
        raise ReaderError(path, "BANK line: expected 'BANK n npts nrec CONS start step ...'", line=ln_no,
                          reader=NAME)
    npts = int(to_float(toks[2], path, ln_no, NAME, "the number of points"))
    btype = toks[4].upper()
    if btype not in ("CONS", "CONST"):
        raise ReaderError(path, f"BANK type {btype}: only constant-wavelength (CONS) banks are supported",
                          line=ln_no, reader=NAME)
    if len(toks) < 7:
        raise ReaderError(path, "CONS bank: expected start and step after CONS", line=ln_no, reader=NAME)
    start = to_float(toks[5], path, ln_no, NAME, "the 2θ start (centidegrees)") / 100.0
    step = to_float(toks[6], path, ln_no, NAME, "the 2θ step (centidegrees)") / 100.0
    fmt = toks[-1].upper() if toks[-1].upper() in ("STD", "ESD", "ALT", "FXYE") else "STD"
    if npts <= 1:
        raise ReaderError(path, f"BANK line gives {npts} points", line=ln_no, reader=NAME)
    end = banks[1] if len(banks) > 1 else len(lines)
    body = [(i + 1, lines[i]) for i in range(b + 1, end) if lines[i].strip()]
    x: list[float] = []
    y: list[float] = []
    e: list[float] = []
    for no, line in body:
        if fmt == "STD":
            for f in _fields(line, 8, 10):
                if f.strip():
                    y.append(to_float(f[2:] if len(f) == 8 else f, path, no, NAME, "a count (10(I2,F6.0))"))
        elif fmt == "ESD":
            fs = [f for f in _fields(line, 8, 10) if f.strip()]
            for k in range(0, len(fs) - 1, 2):
                y.append(to_float(fs[k], path, no, NAME, "an intensity (F8.0)"))
                e.append(to_float(fs[k + 1], path, no, NAME, "an esd (F8.0)"))
            if len(fs) % 2:
                raise ReaderError(path, "ESD record: intensity without its esd", line=no, reader=NAME)
        elif fmt == "ALT":
            for k in range(0, min(len(line.rstrip()), 80), 20):
                rec = line[k:k + 20]
                if not rec.strip():
                    continue
                x.append(to_float(rec[0:8], path, no, NAME, "2θ×3200 (F8.0)") / 3200.0)
                y.append(to_float(rec[8:15], path, no, NAME, "an intensity (F7.4)"))
        else:  # FXYE
            vals = line.split()
            if len(vals) < 2:
                raise ReaderError(path, "FXYE: expected '2θ(centideg) intensity [esd]'", line=no, reader=NAME)
            x.append(to_float(vals[0], path, no, NAME, "2θ in centidegrees") / 100.0)
            y.append(to_float(vals[1], path, no, NAME, "an intensity"))
    if len(y) < npts:
        raise ReaderError(path, f"BANK line promises {npts} points, the bank holds {len(y)} (truncated?)",
                          line=ln_no, reader=NAME)
    y = y[:npts]
    xs = np.array(x[:npts]) if x else start + step * np.arange(npts)
    notes = [f"file has {len(banks)} banks; bank 1 used"] if len(banks) > 1 else []
    return make_pattern(path, NAME, xs, np.array(y), wavelength=wavelength_in(title), notes=notes,
                        meta={"title": title, "format": fmt})


def sniff(head: bytes, path: Path) -> float:
    text = head_text(head)
    if not text:
        return 0.0
    lines = text.splitlines()[:30]
    return 0.95 if any(ln.startswith("BANK ") for ln in lines) else 0.0


SPEC = ReaderSpec(NAME, (".gsa", ".gsas", ".gss", ".fxye", ".esd", ".std", ".raw"), read, sniff,
                  "GSAS raw data, constant wavelength (STD, ESD, ALT, FXYE)")
