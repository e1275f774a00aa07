"""How much input one pattern may cost: the file-size limit every reader is held to, and what an
archive (BRML, RASX) may unpack to, so that a small file cannot take gigabytes of memory."""
from __future__ import annotations

import os

from crystalmela.plugin_api.errors import CrystalmelaError

__all__ = ["ARCHIVE_MEMBERS", "DEFAULT_MAX_MB", "UNPACK_SHARE", "max_file_bytes", "max_unpacked_bytes"]

DEFAULT_MAX_MB = 100.0

# An archive's members are mostly XML, and a parsed XML tree takes several times its text in memory:
# 25 MB of BRML <Datum> rows measured 148 MB peak once parsed with defusedxml. A quarter of the file
# limit unpacked (25 MB by default, a scan of some 600,000 points) bounds one file's reading to a
# few hundred MB, not the gigabytes a small zip bomb would otherwise cost.
UNPACK_SHARE = 0.25

# Members an archive may list. An instrument writes one member per range plus a few descriptions;
# a thousand members is a crafted file, and each costs a parse.
ARCHIVE_MEMBERS = 256


def max_file_bytes() -> int:
    """Largest file any reader is handed (``CRYSTALMELA_MAX_FILE_MB``, default 100 MB)."""
    raw = os.environ.get("CRYSTALMELA_MAX_FILE_MB", "")
    try:
        mb = float(raw) if raw.strip() else DEFAULT_MAX_MB
    except ValueError:
        raise CrystalmelaError(f"CRYSTALMELA_MAX_FILE_MB={raw!r} is not a number of megabytes") from None
    if not mb > 0:
        raise CrystalmelaError(f"CRYSTALMELA_MAX_FILE_MB={raw!r}: give a positive number of megabytes")
    return int(mb * 1e6)


def max_unpacked_bytes() -> int:
    """What one archive may unpack to in total, all members together: ``UNPACK_SHARE`` of the file
    limit. Readers count the bytes as they stream and stop at this many."""
    return int(max_file_bytes() * UNPACK_SHARE)
