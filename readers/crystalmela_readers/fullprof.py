"""FullProf data files.

Two layouts seen in the wild (and in our real fixtures):

- free format (FullProf ``Ins=0``): first line ``start step end [title]``, then counts, several per line;
- ILL D1A/D2B (``Ins=6``, e.g. 3T2 at LLB): title line; the step in columns 17–24 of line 2; 2θ start on
  line 3; monitor on line 4; then ``10(I2,I6)`` records (number of detector cells, counts) ending with a
  value ≤ −1000. Layout as read by CrysFML's D1A/D2B reader; the wavelength is taken from the title
  when it states one ("Lambda: 1.2272").
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from crystalmela.plugin_api import ReaderError, ReaderSpec

from ._common import head_text, is_number, make_pattern, read_text, to_float, wavelength_in

NAME = "fullprof"
_D1A_RECORD = re.compile(r"^(?:[ \d]{2}[ \d-]{5}\d){1,10}\s*$")


def _free_header(line: str):
    toks = line.split()
    if len(toks) < 3 or not all(is_number(t) for t in toks[:3]):
        return None
    start, step, end = (float(t) for t in toks[:3])
    if not (step > 0 and end > start and 0 <= start < 180 and end <= 180):
        return None
    n = (end - start) / step
    if n < 1 or abs(n - round(n)) > 0.1:
        return None
    return start, step, end, " ".join(toks[3:])


def _is_d1a(lines: list[str]) -> bool:
    if len(lines) < 5:
        return False
    l2 = lines[1]
    return (len(l2) >= 24 and is_number(l2[16:24]) and is_number(lines[2].split()[0] if lines[2].split() else "x")
            and bool(_D1A_RECORD.match(lines[4])))


def _read_free(path: Path, lines: list[str], header) -> tuple:
    start, step, end, title = header
    n_expected = int(round((end - start) / step)) + 1
    counts: list[float] = []
    for i, line in enumerate(lines[1:], 2):
        for tok in line.split():
            counts.append(to_float(tok, path, i, NAME, "a count"))
    if len(counts) != n_expected:
        raise ReaderError(path, f"header says {n_expected} points ({start:g} to {end:g} step {step:g}) "
                                f"but the file holds {len(counts)} counts"
                                + (" (truncated?)" if len(counts) < n_expected else ""), reader=NAME)
    x = start + step * np.arange(n_expected)
    return x, np.array(counts), title


def _read_d1a(path: Path, lines: list[str]) -> tuple:
    title = lines[0].strip()
    step = to_float(lines[1][16:24], path, 2, NAME, "the 2θ step in columns 17–24")
    start = to_float(lines[2].split()[0], path, 3, NAME, "the 2θ start")
    if step <= 0:
        raise ReaderError(path, f"2θ step must be positive, found {step:g}", line=2, reader=NAME)
    counts: list[float] = []
    for i in range(4, len(lines)):
        line = lines[i].rstrip()
        if not line.strip():
            continue
        if line.strip().startswith("-"):
            if to_float(line.split()[0], path, i + 1, NAME, "the end marker") <= -1000:
                break
        for j in range(0, len(line), 8):
            field = line[j:j + 8]
            cnt = field[2:].strip()
            if not cnt:
                raise ReaderError(path, f"expected a count in columns {j + 3}–{j + 8}", line=i + 1, reader=NAME)
            counts.append(to_float(cnt, path, i + 1, NAME, "a count (format 10(I2,I6))"))
    else:
        raise ReaderError(path, "no end marker (a value ≤ -1000) after the counts: file truncated?",
                          line=len(lines), reader=NAME)
    if len(counts) < 2:
        raise ReaderError(path, "fewer than 2 counts", reader=NAME)
    x = start + step * np.arange(len(counts))
    return x, np.array(counts), title


def read(path: Path):
    text = read_text(path, NAME)
    lines = [ln for ln in text.splitlines()]
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith(("!", "#"))):
        lines.pop(0)
    if not lines:
        raise ReaderError(path, "no data", reader=NAME)
    header = _free_header(lines[0])
    if header is not None:
        x, y, title = _read_free(path, lines, header)
        kind = "free format"
    elif _is_d1a(lines):
        x, y, title = _read_d1a(path, lines)
        kind = "ILL D1A/D2B"
    else:
        raise ReaderError(path, "expected 'start step end [title]' (three numbers, start < end) on the first "
                                f"line, or the ILL D1A/D2B layout; found {lines[0].strip()[:60]!r}",
                          line=1, reader=NAME)
    return make_pattern(path, NAME, x, y, wavelength=wavelength_in(title),
                        meta={"title": title, "layout": kind})


def sniff(head: bytes, path: Path) -> float:
    text = head_text(head)
    if not text:
        return 0.0
    lines = [ln for ln in text.split("\n", 40)[:40] if ln.strip() and not ln.lstrip().startswith(("!", "#"))][:6]
    if len(lines) < 2:
        return 0.0
    if _free_header(lines[0]) is not None and all(is_number(t) for t in lines[1].split()):
        return 0.8 if len(lines[1].split()) != 3 or len(lines[0].split()) > 3 else 0.6
    if _is_d1a(lines):
        return 0.8
    return 0.0


SPEC = ReaderSpec(NAME, (".dat",), read, sniff,
                  "FullProf: 'start step end' then counts (Ins=0), ILL D1A/D2B (Ins=6)")
