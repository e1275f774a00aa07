"""Fit2D ``.chi`` (title, axis label, intensity label, number of points, then 'x y' rows) and pyFAI
exports (``#`` header with ``Unit: 2th_deg | q_nm^-1 | q_A^-1`` and the wavelength in metres)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crystalmela.plugin_api import ReaderError, ReaderSpec

from ._common import head_text, is_number, make_pattern, read_text, to_float
from .xy import axis_from_header, header_wavelength, parse_columns

NAME = "chi"


def _axis_from_label(label: str) -> tuple[str, float]:
    low = label.lower()
    if "theta" in low or "2th" in low:
        return "2theta", 1.0
    if low.strip().startswith("q"):
        return ("q", 0.1) if "nm" in low else ("q", 1.0)
    if low.strip().startswith("d"):
        return "d", 1.0
    raise ValueError(label)


def read(path: Path):
    text = read_text(path, NAME)
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("#"):  # pyFAI
        x, y, sigma, header = parse_columns(text, path, NAME)
        axis, factor = axis_from_header(header)
        if axis == "d2":
            raise ReaderError(path, "1/d² axis is not supported in .chi files", reader=NAME)
        return make_pattern(path, NAME, x * factor, y, sigma=sigma, axis=axis, wavelength=header_wavelength(header))
    if len(lines) < 5:
        raise ReaderError(path, "expected a 4-line Fit2D header (title, x label, y label, points) and data",
                          reader=NAME)
    try:
        axis, factor = _axis_from_label(lines[1])
    except ValueError:
        raise ReaderError(path, f"x-axis label {lines[1].strip()!r}: expected 2-Theta, Q or d", line=2,
                          reader=NAME) from None
    n = int(to_float(lines[3], path, 4, NAME, "the number of points"))
    x, y, _, _ = parse_columns("\n".join(lines[4:]), path, NAME, first_line=5)
    if x.size != n:
        raise ReaderError(path, f"header says {n} points, the file holds {x.size}"
                                + (" (truncated?)" if x.size < n else ""), line=4, reader=NAME)
    return make_pattern(path, NAME, x * factor, y, axis=axis, meta={"title": lines[0].strip()})


def sniff(head: bytes, path: Path) -> float:
    text = head_text(head)
    if not text:
        return 0.0
    lines = text.splitlines()
    if len(lines) >= 5 and is_number(lines[3].strip()) and not is_number(lines[1].split()[0] if lines[1].split() else ""):
        try:
            _axis_from_label(lines[1])
            return 0.9
        except ValueError:
            return 0.0
    if text.lstrip().startswith("#") and ("2th_deg" in text or "q_nm^-1" in text or "q_A^-1" in text):
        return 0.7
    return 0.0


SPEC = ReaderSpec(NAME, (".chi",), read, sniff, "Fit2D / pyFAI integrated patterns (2θ, Q or d)")
