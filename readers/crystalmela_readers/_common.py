"""Helpers every text reader shares: decoding, number parsing that names the line, Pattern creation."""
from __future__ import annotations

import math
import re
from pathlib import Path

from crystalmela.plugin_api import CrystalmelaError, Pattern, ReaderError

COMMENT_PREFIXES = ("#", "!", "%", "//", ";", "'")
_NUMBER_RE = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eEdD][+-]?\d+)?$")


# UTF-32 first: its little-endian BOM starts with UTF-16's
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def unicode_bom(raw: bytes) -> str | None:
    """The codec a byte-order mark names (Windows tools save "Unicode" text as UTF-16 with one)."""
    return next((codec for bom, codec in _BOMS if raw.startswith(bom)), None)


def _lines(text: str) -> str:
    """One line ending: old Mac files end lines with CR alone, Windows with CR LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def decode(raw: bytes, path: Path, reader: str) -> str:
    """Text of a file: UTF-16/32 with a byte-order mark, UTF-8 (BOM allowed), else Latin-1; line
    endings made LF. NUL bytes in a file without a UTF-16/32 mark mean binary, which is refused."""
    codec = unicode_bom(raw)
    if codec:
        try:
            return _lines(raw.decode(codec))
        except UnicodeDecodeError as exc:
            raise ReaderError(path, f"starts with a {codec.upper()} byte-order mark but is not {codec.upper()} text "
                                    f"({exc.reason})", offset=exc.start, reader=reader) from None
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ReaderError(path, "binary data where text was expected (NUL byte)", offset=nul, reader=reader)
    try:
        return _lines(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return _lines(raw.decode("latin-1"))


def read_text(path: Path, reader: str) -> str:
    return decode(Path(path).read_bytes(), path, reader)


def head_text(head: bytes) -> str | None:
    """Decoded start of a file for sniffing (line endings made LF), or None if it looks binary."""
    codec = unicode_bom(head)
    if codec:   # the head may end inside a character
        return _lines(head.decode(codec, errors="ignore"))
    if b"\x00" in head:
        return None
    try:
        return _lines(head.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return _lines(head.decode("latin-1"))


def is_number(token: str) -> bool:
    return bool(_NUMBER_RE.match(token.strip()))


def fortran(token: str) -> str:
    """Fortran's double-precision exponent (``1.6D+01``) as Python reads it (``1.6E+01``)."""
    return token.replace("D", "E").replace("d", "e") if re.search(r"\d[dD][+-]?\d", token) else token


def to_float(token: str, path: Path, line: int, reader: str, what: str = "a number",
             decimal_comma: bool = False) -> float:
    """Parse one number; anything else (text, NaN, inf) is a ReaderError naming the line."""
    t = token.strip()
    if decimal_comma:
        t = t.replace(",", ".")
    if t[-1:] == ")" and "(" in t:  # CIF-style standard uncertainty: 12.34(5)
        t = t[: t.index("(")]
    t = fortran(t)
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
    except CrystalmelaError as exc:       # a PatternError, or a wavelength no diffractometer uses
        raise ReaderError(path, str(exc), reader=reader) from None


def wavelength_in(text: str) -> float | None:
    """A wavelength stated in free text ("Lambda: 1.2272", "wavelength = 1.5406 A"), if plausible."""
    m = re.search(r"(?:lambda|wavelength|wave\s*length|λ)\s*[:=]?\s*([0-9]+\.[0-9]+)", text, re.I)
    if m:
        v = float(m.group(1))
        if 0.1 <= v <= 5.0:
            return v
    return None
