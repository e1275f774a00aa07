"""Safe XML parsing (defusedxml: no entity expansion bombs or external entities) with clear errors."""
from __future__ import annotations

from pathlib import Path

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from crystalmela.plugin_api import ReaderError


def parse(data: bytes, path: Path, reader: str, member: str | None = None):
    where = f" in {member}" if member else ""
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
