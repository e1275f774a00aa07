"""Safe XML parsing (defusedxml: no entity expansion bombs or external entities) with clear errors."""
from __future__ import annotations

import re
from pathlib import Path

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from crystalmela.plugin_api import ReaderError


_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def parse(data: bytes, path: Path, reader: str, member: str | None = None):
    where = f" in {member}" if member else ""
    if data.startswith(_UTF32_BOMS):
        # expat reads UTF-8/16 and Latin-1 but not UTF-32: decode here, the declaration dropped
        try:
            data = _DECLARATION.sub("", data.decode("utf-32"), count=1).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise ReaderError(path, f"starts with a UTF-32 byte-order mark but is not UTF-32 text{where} "
                                    f"({exc.reason})", reader=reader) from None
    try:
        return SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise ReaderError(path, f"refused unsafe XML{where} ({type(exc).__name__})", reader=reader) from None
    except SafeET.ParseError as exc:
        line, col = getattr(exc, "position", (None, None))
        raise ReaderError(path, f"malformed XML{where}: {exc}", line=line if not member else None,
                          reader=reader) from None


def local(tag: str) -> str:
    """Tag name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def find_all(root, name: str):
    return [el for el in root.iter() if local(el.tag) == name]


def find(root, name: str):
    for el in root.iter():
        if local(el.tag) == name:
            return el
    return None
