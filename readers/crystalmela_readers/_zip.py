"""Zip containers (BRML, RASX) opened defensively. An archive is read against one budget: at most
``ARCHIVE_MEMBERS`` members listed, and all members together unpacked to at most
``max_unpacked_bytes()``, counted while streaming (a member's declared size is not trusted) and
stopped the moment the budget is spent, so a zip bomb costs megabytes, not gigabytes."""
from __future__ import annotations

import zipfile
from pathlib import Path

from crystalmela.plugin_api import ReaderError
from crystalmela.plugin_api.limits import ARCHIVE_MEMBERS, max_unpacked_bytes

CHUNK = 1 << 20


class Archive:
    """One zip file opened for one read (a context manager)."""

    def __init__(self, path: Path, reader: str):
        self.path, self.reader = path, reader
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            raise ReaderError(path, f"not a valid zip container ({exc})", reader=reader) from None
        self.budget = self.left = max_unpacked_bytes()
        listed = len(self.zf.infolist())
        if listed > ARCHIVE_MEMBERS:
            self.zf.close()
            raise ReaderError(path, f"the archive lists {listed} members; at most {ARCHIVE_MEMBERS} are "
                                    "read", reader=reader)

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.zf.close()

    def names(self) -> list[str]:
        return self.zf.namelist()

    def _over(self, name: str) -> ReaderError:
        return ReaderError(self.path, f"{name}: the archive unpacks to more than {self.budget / 1e6:.0f} MB "
                                      "(a quarter of CRYSTALMELA_MAX_FILE_MB); refused", reader=self.reader)

    def read(self, name: str) -> bytes:
        """Member ``name``, unpacked within what is left of the budget."""
        info = self.zf.getinfo(name)
        if info.file_size > self.left:
            raise self._over(name)
        parts = []
        try:
            with self.zf.open(info) as fh:
                while chunk := fh.read(min(CHUNK, self.left + 1)):
                    self.left -= len(chunk)
                    if self.left < 0:
                        raise self._over(name)
                    parts.append(chunk)
        except RuntimeError as exc:        # zipfile's word for an encrypted member
            raise ReaderError(self.path, f"cannot unpack {name}: {exc}", reader=self.reader) from None
        except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, ValueError) as exc:
            raise ReaderError(self.path, f"cannot unpack {name}: {exc}", reader=self.reader) from None
        return b"".join(parts)


def sniff_members(head: bytes, path: Path, predicate) -> bool:
    if not head.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return any(predicate(n) for n in zf.namelist())
    except Exception:
        return False
