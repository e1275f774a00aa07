"""Powder data in CIF (pdCIF): ``_pd_meas_*`` / ``_pd_proc_*`` loops or a 2θ range plus intensities.
Parsed with gemmi (fast, tolerant, reports the line of syntax errors)."""
from __future__ import annotations

import re
from pathlib import Path

import gemmi
import numpy as np

from crystalmela.plugin_api import ReaderError, ReaderSpec

from ._common import unicode_bom, head_text, make_pattern, read_text, to_float

NAME = "cif_powder"
X_TAGS = [("_pd_proc_2theta_corrected", "2theta"), ("_pd_meas_2theta_scan", "2theta"),
          ("_pd_meas_2theta_corrected", "2theta"), ("_pd_proc_d_spacing", "d"), ("_pd_meas_d_spacing", "d")]
Y_TAGS = ["_pd_meas_counts_total", "_pd_meas_intensity_total", "_pd_proc_intensity_total",
          "_pd_proc_intensity_net", "_pd_meas_counts_net", "_pd_calc_intensity_total"]
RANGE_PREFIXES = ["_pd_meas_2theta_range_", "_pd_proc_2theta_range_"]


def _values(block, tag, path, what):
    col = block.find_values(tag)
    out = []
    for k, v in enumerate(col):
        if v in ("?", "."):
            raise ReaderError(path, f"block {block.name}: {tag} value {k + 1} is missing ({v!r}); expected {what}",
                              reader=NAME)
        out.append(to_float(v, path, None, NAME, f"{what} in {tag} (value {k + 1})"))
    return np.array(out)


def read(path: Path):
    try:
        with open(path, "rb") as fh:
            wide = unicode_bom(fh.read(4))
        # gemmi reads bytes as UTF-8; UTF-16/32 text (with its byte-order mark) is decoded here first
        doc = gemmi.cif.read_string(read_text(path, NAME)) if wide else gemmi.cif.read(str(path))
    except (RuntimeError, ValueError, IndexError) as exc:
        msg = str(exc)
        m = re.search(r":(\d+)", msg)
        raise ReaderError(path, f"CIF syntax error: {msg.split(':', 2)[-1].strip() if m else msg}",
                          line=int(m.group(1)) if m else None, reader=NAME) from None
    for block in doc:
        ytag = next((t for t in Y_TAGS if len(block.find_values(t))), None)
        if ytag is None:
            continue
        y = _values(block, ytag, path, "an intensity")
        xtag, axis = next(((t, a) for t, a in X_TAGS if len(block.find_values(t))), (None, "2theta"))
        if xtag is not None:
            x = _values(block, xtag, path, "a position")
        else:
            rng = None
            for pre in RANGE_PREFIXES:
                vals = [block.find_value(pre + k) for k in ("min", "max", "inc")]
                if all(v not in (None, "?", ".") for v in vals):
                    rng = [to_float(v, path, None, NAME, pre + k) for v, k in zip(vals, ("min", "max", "inc"))]
                    break
            if rng is None:
                raise ReaderError(path, f"block {block.name}: {ytag} has no 2θ: expected a _pd_meas_2theta_scan "
                                        "loop or _pd_meas_2theta_range_min/max/inc", reader=NAME)
            x = rng[0] + rng[2] * np.arange(y.size)
            if abs(x[-1] - rng[1]) > abs(rng[2]) * 0.51:
                raise ReaderError(path, f"block {block.name}: 2θ range {rng[0]:g}–{rng[1]:g} step {rng[2]:g} "
                                        f"does not match {y.size} intensities", reader=NAME)
        if x.size != y.size:
            raise ReaderError(path, f"block {block.name}: {x.size} positions ({xtag}) but {y.size} "
                                    f"intensities ({ytag})", reader=NAME)
        wl = block.find_value("_diffrn_radiation_wavelength")
        wavelength = to_float(wl, path, None, NAME, "the wavelength") if wl not in (None, "?", ".") else None
        return make_pattern(path, NAME, x, y, axis=axis, wavelength=wavelength,
                            meta={"block": block.name, "x_tag": xtag, "y_tag": ytag})
    raise ReaderError(path, "no powder data (_pd_meas_* or _pd_proc_* intensities) in any data block; "
                            "a structure-only CIF has no measured pattern to classify", reader=NAME)


def sniff(head: bytes, path: Path) -> float:
    text = head_text(head)
    if not text:
        return 0.0
    if "_pd_meas_" in text or "_pd_proc_" in text:
        return 0.9
    return 0.05 if re.search(r"^\s*data_", text, re.M) else 0.0


SPEC = ReaderSpec(NAME, (".cif", ".pdcif", ".rtv"), read, sniff, "CIF powder blocks (_pd_meas_*, _pd_proc_*)")
