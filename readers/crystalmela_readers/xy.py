"""Column text: XY / XYE / DAT / TXT / CSV, whitespace-, comma- or semicolon-separated, with comments,
header lines and decimal commas.

Written by hand because ``numpy.loadtxt`` cannot say which line is wrong in words a user understands,
nor guess the delimiter and decimal mark of instrument exports.
"""
from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np

from crystalmela.plugin_api import ReaderError, ReaderSpec

from ._common import COMMENT_PREFIXES, head_text, is_number, make_pattern, read_text, to_float, wavelength_in

NAME = "xy"
_DECIMAL_COMMA_RE = re.compile(r"^[+-]?\d+,\d+([eE][+-]?\d+)?$")
_UNIT_RE = re.compile(r"(2th_deg|2th_rad|q_nm\^-1|q_a\^-1|d_a|d\*2_a\^-2)", re.I)


def _strip_comment(line: str) -> str:
    s = line.strip()
    if not s or s.startswith(COMMENT_PREFIXES):
        return ""
    if "#" in s:
        s = s[: s.index("#")].strip()
    return s


def _layout(sample: str) -> tuple[str | None, bool]:
    """(delimiter or None for whitespace, decimal comma?) from one data line."""
    if ";" in sample:
        return ";", "," in sample
    if "," in sample:
        ws = sample.split()
        if len(ws) >= 2 and all(_DECIMAL_COMMA_RE.match(t) or is_number(t) and "," not in t for t in ws) \
                and any("," in t for t in ws):
            return None, True
        return ",", False
    return None, False


def _split(s: str, delim: str | None) -> list[str]:
    if delim is None:
        return s.split()
    return [t.strip() for t in s.split(delim) if t.strip() != ""]


def axis_from_header(header: str) -> tuple[str, float]:
    """pyFAI-style unit declarations: (axis, factor to 2θ° / d Å / Q Å⁻¹)."""
    m = _UNIT_RE.search(header)
    unit = m.group(1).lower() if m else "2th_deg"
    return {"2th_deg": ("2theta", 1.0), "2th_rad": ("2theta", 180.0 / np.pi), "q_nm^-1": ("q", 0.1),
            "q_a^-1": ("q", 1.0), "d_a": ("d", 1.0), "d*2_a^-2": ("d2", 1.0)}[unit]


def header_wavelength(header: str) -> float | None:
    """Wavelength in a header, in Å; pyFAI writes metres ("Wavelength: 1.5406e-10 m")."""
    m = re.search(r"wave\s*length\s*[:=]?\s*([0-9.]+(?:[eE][+-]?\d+)?)\s*(m|nm|a|å|angstrom)?\b", header, re.I)
    if m:
        v = float(m.group(1))
        unit = (m.group(2) or "").lower()
        if unit == "m" or v < 1e-6:
            v *= 1e10
        elif unit == "nm":
            v *= 10
        return v if 0.1 <= v <= 5.0 else None
    return wavelength_in(header)


def _fast(lines: list[str], delim: str | None, dcomma: bool) -> np.ndarray | None:
    """numpy.loadtxt (C speed) on the data block; None on anything unusual, for the careful parser."""
    first = _split(_strip_comment(lines[0]), delim)
    ncol = min(3, len(first))
    text = "\n".join(lines)
    if dcomma:
        text = text.replace(",", ".")
    comments = "#"  # one marker keeps loadtxt in C; other comment styles take the careful path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. empty input
            arr = np.loadtxt(io.StringIO(text), delimiter=delim, comments=comments, ndmin=2,
                             usecols=range(ncol))
    except (ValueError, UserWarning, IndexError):
        return None
    if arr.shape[0] < 1 or not np.all(np.isfinite(arr)):
        return None
    return arr


def _careful(lines, start, delim, dcomma, path, reader, first_line) -> np.ndarray:
    """Line by line, so the error names the line and says what was expected."""
    rows: list[list[str]] = []
    numbers: list[int] = []
    for i in range(start, len(lines)):
        s = _strip_comment(lines[i])
        if not s:
            continue
        toks = _split(s, delim)
        if len(toks) < 2:
            raise ReaderError(path, f"expected at least 2 numbers (2θ, intensity), found {len(toks)}: {s!r}",
                              line=i + first_line, reader=reader)
        rows.append(toks[:3])
        numbers.append(i + first_line)
    ncol = 3 if all(len(r) >= 3 for r in rows) else 2
    flat = [to_float(t, path, ln, reader, "a number", dcomma) for toks, ln in zip(rows, numbers) for t in toks[:ncol]]
    return np.array(flat, dtype=float).reshape(-1, ncol)


def parse_columns(text: str, path: Path, reader: str, first_line: int = 1):
    """Numeric rows of column text → (x, y, sigma or None, header text)."""
    lines = text.splitlines()
    header: list[str] = []
    start = None
    one_col_line = None
    for i, raw in enumerate(lines):
        s = _strip_comment(raw)
        if not s:
            if raw.strip():
                header.append(raw)
            continue
        toks = re.split(r"[\s,;]+", s)
        if is_number(toks[0]):
            if len([t for t in toks if t]) >= 2:
                start = i
                break
            one_col_line = one_col_line or i + first_line
        header.append(raw)
    if start is None:
        if one_col_line:
            raise ReaderError(path, "only one column of numbers; expected 2θ and intensity per line",
                              line=one_col_line, reader=reader)
        raise ReaderError(path, "no numeric data found; expected lines of '2θ intensity [esd]'", reader=reader)
    delim, dcomma = _layout(_strip_comment(lines[start]))
    arr = _fast(lines[start:], delim, dcomma)
    if arr is None:
        arr = _careful(lines, start, delim, dcomma, path, reader, first_line)
    sigma = arr[:, 2] if arr.shape[1] == 3 else None
    return arr[:, 0], arr[:, 1], sigma, "\n".join(header)


def read(path: Path):
    text = read_text(path, NAME)
    x, y, sigma, header = parse_columns(text, path, NAME)
    axis, factor = axis_from_header(header)
    x = x * factor
    if axis == "d2":  # 1/d² → d
        axis, x = "d", 1.0 / np.sqrt(np.where(x > 0, x, np.nan))
        if not np.all(np.isfinite(x)):
            raise ReaderError(path, "1/d² values must be positive", reader=NAME)
    return make_pattern(path, NAME, x, y, axis=axis, sigma=sigma, wavelength=header_wavelength(header),
                        meta={"header": header[:2000]} if header else None)


LOOK_PAST_BYTES = 4 * 1024 * 1024


def _sniff_past_comments(path: Path) -> float:
    """A file whose first 64 KB are comments: sniff the first data lines after them (within 4 MB)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(LOOK_PAST_BYTES)
    except OSError:
        return 0.0
    text = head_text(head)
    if text is None:
        return 0.0
    rest = [ln for ln in text.split("\n") if _strip_comment(ln)][:50]
    return sniff("\n".join(rest).encode("utf-8"), path) if len(rest) >= 3 else 0.0


def sniff(head: bytes, path: Path) -> float:
    text = head_text(head)
    if text is None:
        return 0.0
    lines = [_strip_comment(ln) for ln in text.split("\n", 200)[:200]]
    lines = [ln for ln in lines if ln]
    if len(head) >= 65536:
        if not lines:       # more comments than the head holds: look past them
            return _sniff_past_comments(path)
        lines = lines[:-1]  # the last line may be cut
    data = [ln for ln in lines if is_number(re.split(r"[\s,;]+", ln)[0])]
    if len(data) < 3:
        return 0.0
    delim, _ = _layout(data[0])
    counts = [len(_split(ln, delim)) for ln in data]
    if sum(c >= 2 for c in counts) < max(3, 0.5 * len(counts)):  # mostly one column: not ours
        return 0.0
    consistent = sum(c == counts[-1] for c in counts) / len(counts)
    return 0.5 if consistent > 0.95 and counts[-1] <= 4 else 0.2


SPEC = ReaderSpec(NAME, (".xy", ".xye", ".dat", ".txt", ".csv", ".asc", ".prn", ".tsv"), read, sniff,
                  "two/three-column text (2θ intensity [esd]); whitespace, comma or semicolon; decimal commas")
