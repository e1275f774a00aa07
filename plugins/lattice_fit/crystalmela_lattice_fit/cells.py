"""The cells behind lattice_fit's answer, as a crystallographer reads them: each lattice family's best
refined cell in direct-space parameters (Å, °), with de Wolff's figure of merit, the peaks it indexes
and its zero shift. ``describe`` writes the lines the feature extractor's ``explain`` returns, so a
user can check an answer the way they would check an indexing program's (a right cell indexes every
peak with M20 well above 10); ``as_data`` gives the same cells as numbers (``Evidence.data``), to take
on to a Le Bail fit without parsing text.

Each family's parameters are its search's own (cubic A; tetragonal and hexagonal (A, C) with
Q = A·m + C·l²; orthorhombic (A, B, C); monoclinic (A, B, C, D), D the hl term; triclinic (A, …, F));
``reciprocal_row`` writes them as one six-term reciprocal metric so that a single inversion gives the
direct cell. The triclinic cell is shown Niggli-reduced (gemmi), the form tables and databases use.
"""
from __future__ import annotations

from typing import NamedTuple

import gemmi
import numpy as np

from crystalmela.plugin_api import Evidence

from .lattice_symmetry import direct_cell, niggli

# the lattice system of each family (hP is the lattice of hexagonal and of trigonal P crystals; hR that
# of rhombohedral ones)
LATTICE = {"cP": "cubic", "cI": "cubic", "cF": "cubic", "hP": "hexagonal", "hR": "rhombohedral",
           "tP": "tetragonal", "tI": "tetragonal", "oP": "orthorhombic", "mP": "monoclinic", "aP": "triclinic"}
# the families one line stands for, highest symmetry first: centrings of one metric compete by M
# (the centred cell indexes the same peaks with fewer spare lines), so hP and hR share a rank
RANK = {"cP": 0, "cI": 0, "cF": 0, "hP": 1, "hR": 1, "tP": 2, "tI": 2, "oP": 3, "mP": 4, "aP": 5}
MIN_FRACTION = 0.75   # cells indexing fewer of the peaks are not shown
GOOD_M = 10.0         # de Wolff's M (with GOOD_FRACTION indexed) from which a cell is usually right
GOOD_FRACTION = 0.95
MIN_AXIS = 2.0        # Å: no crystal has a shorter lattice translation (Be, a = 2.29 Å, is about the
                      # shortest); with few peaks, sub-cells this small index everything and are not shown
SHOWN = 4             # at most this many cells, best first
# the lattice system of a lattice whose rotation group (proper rotations, Le Page's search) has this
# order: what the mP and aP lines say when their cell's lattice is metrically of higher symmetry
LATTICE_OF_ORDER = {1: "triclinic", 2: "monoclinic", 4: "orthorhombic", 6: "rhombohedral", 8: "tetragonal",
                    12: "hexagonal", 24: "cubic"}
METRIC_OBLIQUITY = 0.5   # degrees: two-fold axes within this count (the tightest of the features' three)


def reciprocal_row(family: str, params) -> np.ndarray:
    """(A, B, C, D, E, F) of Q = A h² + B k² + C l² + D hk + E hl + F kl for a family's parameters."""
    p = np.asarray(params, float)
    if family[0] == "c":
        return np.array([p[0], p[0], p[0], 0.0, 0.0, 0.0])
    if family in ("tP", "tI"):
        return np.array([p[0], p[0], p[1], 0.0, 0.0, 0.0])
    if family in ("hP", "hR"):                       # m = h² + hk + k²: the hk term is A too
        return np.array([p[0], p[0], p[1], p[0], 0.0, 0.0])
    if family == "oP":
        return np.array([p[0], p[1], p[2], 0.0, 0.0, 0.0])
    if family == "mP":                               # b unique: D is the hl term
        return np.array([p[0], p[1], p[2], 0.0, p[3], 0.0])
    if family == "aP":
        return p[:6].copy()
    raise ValueError(f"unknown lattice family {family!r}")


def direct_parameters(family: str, params) -> tuple[float, ...] | None:
    """(a, b, c, α, β, γ) of a family's cell (the triclinic one Niggli-reduced); None if the
    parameters are not a lattice."""
    cell = direct_cell(reciprocal_row(family, params))
    if cell is None or family != "aP":
        return cell
    reduced = niggli(cell)
    return cell if reduced is None else tuple(reduced.parameters)


def metric_lattice(cell: tuple[float, ...]) -> str | None:
    """The lattice system the cell's lattice has metrically (two-fold axes within
    ``METRIC_OBLIQUITY``, gemmi's Le Page search on the Niggli-reduced cell): a primitive triclinic
    cell of a centred orthorhombic lattice, say, reads "orthorhombic". None if the search fails."""
    reduced = niggli(cell)
    if reduced is None:
        return None
    return LATTICE_OF_ORDER.get(len(gemmi.find_lattice_symmetry(reduced, "P", METRIC_OBLIQUITY)))


def cell_text(family: str, cell: tuple[float, ...]) -> str:
    """The parameters a family leaves free: a (cubic), a and c (hR on hexagonal axes), a b c, a b c β,
    or all six."""
    a, b, c, al, be, ga = cell
    if family[0] == "c":
        return f"a {a:.4f} Å"
    if family[0] in "th":
        return f"a {a:.4f}  c {c:.4f} Å"
    if family == "oP":
        return f"a {a:.4f}  b {b:.4f}  c {c:.4f} Å"
    if family == "mP":
        return f"a {a:.4f}  b {b:.4f}  c {c:.4f} Å  β {be:.2f}°"
    return f"a {a:.4f}  b {b:.4f}  c {c:.4f} Å  α {al:.2f}  β {be:.2f}  γ {ga:.2f}°"


class Shown(NamedTuple):
    """One cell as ``describe`` shows it."""
    family: str                 # cP … aP
    cell: tuple[float, ...]     # a, b, c (Å), α, β, γ (°); triclinic Niggli-reduced
    M: float                    # de Wolff's figure on the peaks used
    fraction: float             # of those peaks indexed
    zero: float                 # refined zero shift, ° 2θ
    good: bool                  # indexes GOOD_FRACTION of the peaks with M ≥ GOOD_M
    metric: str | None          # mP and aP: the lattice system its lattice has metrically


def ranked(cells: dict) -> list[Shown]:
    """The best cell (by M·f⁴) of each ``RANK`` that indexes at least ``MIN_FRACTION`` of the peaks
    with no axis below ``MIN_AXIS``, in the order a crystallographer picks: first the cells that index
    the pattern (``GOOD_FRACTION`` of the peaks, M ≥ ``GOOD_M``) from the highest symmetry down (a
    lower lattice indexes whatever a higher one does, often with a smaller spurious cell and a higher
    M when the peaks are few; the order TREOR and DICVOL search in), then the others by M·f⁴. A
    monoclinic or triclinic cell carries the lattice system its lattice has metrically
    (``metric_lattice``): the searches have no centred orthorhombic or monoclinic cells, and such
    lattices show up as these. ``cells``: family → ``indexing.keep_cell`` dict."""
    best: dict[int, tuple] = {}
    for family, c in cells.items():
        if c["fraction"] < MIN_FRACTION:
            continue
        cell = direct_parameters(family, c["params"])
        score = c["M"] * c["fraction"] ** 4
        if cell is not None and min(cell[:3]) >= MIN_AXIS and score > best.get(RANK[family], (-1.0,))[0]:
            best[RANK[family]] = (score, family, c, cell)
    rows = []
    for score, family, c, cell in best.values():
        good = c["fraction"] >= GOOD_FRACTION and c["M"] >= GOOD_M
        metric = metric_lattice(cell) if family in ("mP", "aP") else None
        rows.append(((not good, RANK[family] if good else 0, -score),
                     Shown(family, tuple(cell), c["M"], c["fraction"], c["zero"], good, metric)))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


def describe(cells: dict, n_peaks: int, rows: list[Shown] | None = None) -> list[str]:
    """Lines for ``explain``: a heading, then ``ranked``'s first ``SHOWN`` cells, each with its M,
    peaks indexed and zero shift, "lattice X" when its lattice is metrically higher, and "doubtful"
    when it does not index the pattern. ``rows``: ``ranked(cells)``, when the caller has it."""
    if n_peaks < 4:
        return [f"{n_peaks} peaks picked: too few to try a cell"]
    rows = ranked(cells) if rows is None else rows
    if not rows:
        return [f"no cell indexes {MIN_FRACTION:.0%} of the first {n_peaks} peaks"]
    out = [f"cells that index the first {n_peaks} peaks (de Wolff M{n_peaks}, peaks indexed, zero shift):"]
    for r in rows[:SHOWN]:
        n = int(round(r.fraction * n_peaks))
        higher = f"  lattice {r.metric}" if r.metric and r.metric != LATTICE[r.family] else ""
        out.append(f"{r.family} {LATTICE[r.family]:<12}  {cell_text(r.family, r.cell):<60}  M{n_peaks} {r.M:6.1f}  "
                   f"{n:2d}/{n_peaks}  zero {r.zero:+.3f}°" + higher + ("" if r.good else "  doubtful"))
    return out


def as_data(cells: dict, n_peaks: int, rows: list[Shown] | None = None) -> dict:
    """``ranked``'s cells (all of them, not only the ``SHOWN`` first) as JSON-ready numbers, in the
    same order: family, lattice system, a b c (Å) α β γ (°), de Wolff's M, peaks indexed, zero shift
    (° 2θ), whether it indexes the pattern, and the lattice system its lattice has metrically (mP, aP;
    else the family's own). ``rows``: ``ranked(cells)``, when the caller has it."""
    out = []
    if n_peaks < 4:                          # describe's "too few to try a cell"
        rows = []
    elif rows is None:
        rows = ranked(cells)
    for r in rows:
        a, b, c, al, be, ga = (float(v) for v in r.cell)
        out.append({"family": r.family, "lattice": LATTICE[r.family],
                    "a": round(a, 5), "b": round(b, 5), "c": round(c, 5),
                    "alpha": round(al, 3), "beta": round(be, 3), "gamma": round(ga, 3),
                    "de_wolff_m": round(float(r.M), 2), "peaks_indexed": int(round(r.fraction * n_peaks)),
                    "zero_shift_deg": round(float(r.zero), 4), "indexes": bool(r.good),
                    "metric_lattice": r.metric or LATTICE[r.family]})
    return {"peaks_used": int(n_peaks), "cells": out}


def evidence(cells: dict, n_peaks: int) -> Evidence:
    """What ``explain`` returns: ``describe``'s lines and ``as_data``'s numbers (one ranking for both)."""
    rows = ranked(cells) if n_peaks >= 4 else []
    return Evidence(describe(cells, n_peaks, rows), as_data(cells, n_peaks, rows))
