"""Choosing a reader for a file and running it: an explicit name, else content sniffing weighted toward
the readers that claim the file's extension."""
from __future__ import annotations

import os
from pathlib import Path

from crystalmela.plugin_api.errors import CrystalmelaError, NoReaderError, PatternError, ReaderError
from crystalmela.plugin_api.limits import max_file_bytes
from crystalmela.plugin_api.pattern import Pattern
from crystalmela.plugins import Registry, get_registry
from crystalmela.plugin_api.specs import ReaderSpec

SNIFF_BYTES = 64 * 1024


def _sniff(spec: ReaderSpec, head: bytes, path: Path) -> float:
    try:
        score = float(spec.sniff(head, path))
    except Exception:  # a sniffer must never raise; treat a crash as "not mine"
        return 0.0
    return score if 0.0 < score <= 1.0 else 0.0


def _extensions(path: Path) -> list[str]:
    """Suffixes to match, longest first (``x.xy.gz`` → ``.xy.gz``, ``.gz``)."""
    sfx = [s.lower() for s in path.suffixes]
    return ["".join(sfx[i:]) for i in range(len(sfx))]


EXTENSION_BONUS = 0.3


def choose_reader(path: Path, head: bytes, registry: Registry) -> ReaderSpec:
    """The reader most sure of the content, readers claiming the file's extension getting a bonus:
    so ``.dat`` goes to FullProf or XY by content, and a GSAS file saved as ``.txt`` still reads."""
    readers = list(registry.readers.values())
    exts = _extensions(path)
    by_ext = {r.name for r in readers if any(e in r.extensions for e in exts)}
    scored = []
    for r in readers:
        s = _sniff(r, head, path)
        if s > 0:
            scored.append((s + (EXTENSION_BONUS if r.name in by_ext else 0.0), r.name, r))
    if scored:
        return sorted(scored, key=lambda t: (-t[0], t[1]))[0][2]
    detail = f"extension {exts[-1]!r}" if exts else "no extension"
    if by_ext:
        detail += f" claimed by {', '.join(sorted(by_ext))} but the content does not match"
    raise NoReaderError(path, sorted(r.name for r in readers), detail)


def read_pattern(path: str | os.PathLike, reader: str | None = None,
                 registry: Registry | None = None) -> Pattern:
    """Read one pattern file with the named reader or the best matching one.

    Raises :class:`ReaderError` (file, line or offset, what was expected) on any bad input; a reader
    bug surfaces as a ``ReaderError`` naming the reader, not a traceback.
    """
    registry = registry or get_registry()
    p = Path(path)
    if not p.exists():
        raise ReaderError(p, "no such file")
    if p.is_dir():
        raise ReaderError(p, "is a directory, expected a pattern file")
    try:
        size = p.stat().st_size
        limit = max_file_bytes()
        if size == 0:
            raise ReaderError(p, "file is empty")
        if size > limit:
            raise ReaderError(p, f"file is {size / 1e6:.0f} MB, over the {limit / 1e6:.0f} MB limit "
                                 "(set CRYSTALMELA_MAX_FILE_MB to raise it)")
        with open(p, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise ReaderError(p, f"cannot open: {exc.strerror or exc}") from None
    spec = registry.reader(reader) if reader else choose_reader(p, head, registry)
    try:
        pattern = spec.read(p)
    except ReaderError as exc:
        if exc.reader is None:
            raise ReaderError(exc.path or p, exc.reason, line=exc.line, offset=exc.offset,
                              reader=spec.name) from None
        raise
    except PatternError as exc:
        raise ReaderError(p, str(exc), reader=spec.name) from None
    except UnicodeDecodeError as exc:
        raise ReaderError(p, f"not text in the expected encoding ({exc.reason})", offset=exc.start,
                          reader=spec.name) from None
    except MemoryError:
        raise ReaderError(p, "out of memory while reading", reader=spec.name) from None
    except Exception as exc:  # reader bug: still one clear line, never a traceback
        raise ReaderError(p, f"reader failed unexpectedly ({type(exc).__name__}: {exc}); "
                             "please report this with the file", reader=spec.name) from None
    if not isinstance(pattern, Pattern):
        raise ReaderError(p, f"reader returned {type(pattern).__name__}, not a Pattern", reader=spec.name)
    pattern.source = str(p)
    pattern.reader = spec.name
    return pattern
