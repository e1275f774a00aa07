"""One error tree, so the CLI and the web layer can turn any expected failure into one clear line."""
from __future__ import annotations

from pathlib import Path

__all__ = ["CrystalmelaError", "ModelNotAvailableError", "NoReaderError", "PatternError", "PluginConflictError", "PluginLoadError", "ReaderError", "UnknownModelError", "settings_problem"]


class CrystalmelaError(Exception):
    """Base of every error a user can cause or fix; never shown with a traceback."""


class ReaderError(CrystalmelaError):
    """A file could not be read; says which file, where (line or byte offset) and what was expected."""

    def __init__(self, path: str | Path | None, message: str, *, line: int | None = None,
                 offset: int | None = None, reader: str | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.offset = offset
        self.reader = reader
        self.reason = message
        where = self.path or "<input>"
        if line is not None:
            where += f":{line}"
        elif offset is not None:
            where += f" (byte offset {offset})"
        prefix = f"{where}: "
        if reader:
            prefix += f"[{reader}] "
        super().__init__(prefix + message)


class NoReaderError(ReaderError):
    """No installed reader accepted the file; the message lists every reader tried."""

    def __init__(self, path: str | Path, tried: list[str], detail: str = ""):
        self.tried = list(tried)
        msg = "no reader recognises this file"
        if detail:
            msg += f" ({detail})"
        msg += "; readers tried: " + (", ".join(tried) if tried else "none installed")
        msg += ". Choose one with --reader NAME (see `crystalmela readers`)."
        super().__init__(path, msg)


class PatternError(CrystalmelaError):
    """Arrays that cannot form a valid powder pattern (lengths, non-finite values, empty range)."""


class UnknownModelError(CrystalmelaError):
    """A model, reader, feature or data set name that no installed plugin provides."""


class ModelNotAvailableError(CrystalmelaError):
    """A classifier is installed but has no usable trained model for the requested data set."""


class PluginLoadError(CrystalmelaError):
    """A plugin failed to import or register (raised only in strict mode; otherwise recorded)."""


class PluginConflictError(CrystalmelaError):
    """Two plugins registered the same name for a reader, feature extractor or classifier."""


def settings_problem(exc: Exception, option: dict[str, str] | None = None) -> str:
    """A pydantic ValidationError as one line a user can act on: each bad field (renamed by
    ``option``, e.g. to the CLI option that sets it), what was expected and what was given; pydantic's
    own text spans several lines and ends in a documentation URL. Other exceptions: their text."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for e in errors():
        field = ".".join(map(str, e.get("loc", ()))) or "settings"
        field = (option or {}).get(field, field)
        given = e.get("input")
        got = "" if isinstance(given, dict) or given is None else f" (got {given!r})"
        parts.append(f"{field}: {e['msg']}{got}")
    return "; ".join(parts)
