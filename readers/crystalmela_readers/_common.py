"""Helpers every text reader shares: decoding, number parsing that names the line, Pattern creation."""
from __future__ import annotations

import math
import re
from pathlib import Path

from crystalmela.plugin_api import Pattern, PatternError, ReaderError

COMMENT_PREFIXES = ("#", "!", "%", "//", ";", "'")
_NUMBER_RE = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eEdD][+-]?\d+)?$")


def decode(raw: bytes, path: Path, reader: str) -> str:
    """Text of a file: UTF-8 (BOM allowed), else Latin-1; NUL bytes mean binary, which is refused."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ReaderError(path, "binary data where text was expected (NUL byte)", offset=nul, reader=reader)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_text(path: Path, reader: str) -> str:
    return decode(Path(path).read_bytes(), path, reader)


def head_text(head: bytes) -> str | None:
    """Decoded start of a file for sniffing, or None if it looks binary."""
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return head.decode("latin-1")


def is_number(token: str) -> bool:
    return bool(_NUMBER_RE.match(token.strip()))


def to_float(token: str, path: Path, line: int, reader: str, what: str = "a number",
             decimal_comma: bool = False) -> float:
    """Parse one number; anything else (text, NaN, inf) is a ReaderError naming the line."""
    t = token.strip()
    if decimal_comma:
        t = t.replace(",", ".")
    if t[-1:] == ")" and "(" in t:  # CIF-style standard uncertainty: 12.34(5)
        t = t[: t.index("(")]
    t = t.replace("D", "E").replace("d", "e") if re.search(r"\d[dD][+-]?\d", t) else t
    try:
        v = float(t)
    except ValueError:
        raise ReaderError(path, f"expected {what}, found {token.strip()!r}", line=line, reader=reader) from None
    if not math.isfinite(v):
        raise ReaderError(path, f"expected {what}, found non-finite value {token.strip()!r}", line=line,
                          reader=reader)
    return v


def make_pattern(path: Path, reader: str, x, y, **kw) -> Pattern:
    """Build the Pattern; background-subtracted data with negative values are offset (and noted)."""
    kw.setdefault("negative", "offset")
    try:
        return Pattern(x, y, **kw)
    except PatternError as exc:
        raise ReaderError(path, str(exc), reader=reader) from None


def wavelength_in(text: str) -> float | None:
    """A wavelength stated in free text ("Lambda: 1.2272", "wavelength = 1.5406 A"), if plausible."""
    m = re.search(r"(?:lambda|wavelength|wave\s*length|λ)\s*[:=]?\s*([0-9]+\.[0-9]+)", text, re.I)
    if m:
        v = float(m.group(1))
        if 0.1 <= v <= 5.0:
            return v
    return None
