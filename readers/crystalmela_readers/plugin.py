"""The readers' hook implementations: one ReaderSpec per format module."""
from __future__ import annotations

from crystalmela.plugin_api import hookimpl

from . import brml, bruker_raw, chi, cif_powder, fullprof, gsas, rigaku, uxd, xrdml, xy


@hookimpl
def crystalmela_readers():
    return [xy.SPEC, fullprof.SPEC, uxd.SPEC, bruker_raw.SPEC, brml.SPEC, xrdml.SPEC, gsas.SPEC,
            *rigaku.SPECS, chi.SPEC, cif_powder.SPEC]
