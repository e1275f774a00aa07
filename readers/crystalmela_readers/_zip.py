"""Zip containers (BRML, RASX) opened defensively: bad archives and oversized members give clear errors."""
from __future__ import annotations

import zipfile
from pathlib import Path

from crystalmela.plugin_api import ReaderError

MAX_MEMBER = 500_000_000  # uncompressed bytes; guards against zip bombs


def open_zip(path: Path, reader: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ReaderError(path, f"not a valid zip container ({exc})", reader=reader) from None


def read_member(zf: zipfile.ZipFile, name: str, path: Path, reader: str) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > MAX_MEMBER:
        raise ReaderError(path, f"{name} unpacks to {info.file_size / 1e6:.0f} MB; refused", reader=reader)
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise ReaderError(path, f"cannot unpack {name}: {exc}", reader=reader) from None


def sniff_members(head: bytes, path: Path, predicate) -> bool:
    if not head.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return any(predicate(n) for n in zf.namelist())
    except Exception:
        return False
