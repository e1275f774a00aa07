"""Random symmetric crystals: training structures drawn with real databases' symmetry statistics.

Why our own generator: pyxtal's Wyckoff-exact generator runs at ≈ 11 structures/s here and packs
molecules too loosely; a powder classifier needs the right lattice metric, extinctions and intensity
fall-off, not chemically exact packing. Special positions come from averaging a point over the cyclic
group of a random operation (the average is fixed by it when the operation has fixed points), so no
Wyckoff table is needed; the site multiplicity is then measured exactly.

Two kinds, matching the paper's organic / inorganic split (C and H present → organic):
- ``organic``: one molecule (random tree of C/N/O/S/halogen atoms, 1.3–1.55 Å bonds, hydrogens on
  carbon, sometimes a metal centre) in a general position, Z' = 1; cell volume from Kitaigorodskii's
  ≈ 18 Å³ per non-hydrogen atom, giving densities of ≈ 1.2–1.6 g/cm³.
- ``inorganic``: 1–10 independent sites on general or special positions with metals and anions
  (or intermetallic), volume from atomic volumes, minimum interatomic distance enforced.
"""
from __future__ import annotations

from functools import lru_cache

import gemmi
import numpy as np

from crystalmela.simulation import sgstats
from crystalmela.simulation.structure import Crystal, operations
from crystalmela.plugin_api.systems import crystal_system

MAX_CELL_ATOMS = 600
CELL_RANGE = (2.5, 40.0)  # the paper's filter (Å); generated cells obey it too

_ORGANIC_HEAVY = (("C", 0.70), ("O", 0.12), ("N", 0.10), ("S", 0.025), ("Cl", 0.02), ("F", 0.015),
                  ("Br", 0.01), ("P", 0.005), ("I", 0.005))
_ORGANIC_METALS = ("Cu", "Zn", "Co", "Ni", "Fe", "Mn", "Cd", "Ag", "Pt", "Pd", "Sn", "Ru", "Cr",
                   "Mg", "Ca", "Na", "K", "Ln", "Zr", "Hg")
_ANIONS = (("O", 40), ("F", 5), ("S", 6), ("Cl", 4), ("N", 3), ("Se", 2), ("P", 3), ("Br", 1),
           ("I", 1), ("Si", 3), ("B", 2), ("As", 1), ("Te", 1), ("Ge", 1))
_METALS = ("Li Na K Rb Cs Be Mg Ca Sr Ba Sc Y La Ce Pr Nd Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Ti Zr Hf "
           "V Nb Ta Cr Mo W Mn Re Fe Ru Os Co Rh Ir Ni Pd Pt Cu Ag Au Zn Cd Hg Al Ga In Tl Sn Pb "
           "Sb Bi U Th").split()
# Rough atomic volumes in crystals (Å³): anions big, cations by covalent radius.
_ANION_VOLUME = {"O": 12.0, "F": 11.0, "S": 25.0, "Cl": 25.0, "N": 12.0, "Se": 30.0, "P": 20.0,
                 "Br": 30.0, "I": 38.0, "Si": 12.0, "B": 7.0, "As": 22.0, "Te": 34.0, "Ge": 16.0}


@lru_cache(maxsize=8)
def _sg_prior(kind: str, power: float) -> np.ndarray:
    p = sgstats.probabilities(kind) ** power
    return p / p.sum()


@lru_cache(maxsize=256)
def _hall(number: int) -> str:
    return gemmi.find_spacegroup_by_number(number).hall


CELL_MODELS = ("reduced", "uniform")


def _check_cell_model(model: str) -> None:
    if model not in CELL_MODELS:
        raise ValueError(f"unknown cell model {model!r}: expected one of {', '.join(CELL_MODELS)}")


def random_cell(system: str, volume: float, rng: np.random.Generator, *, spread: float = 0.35,
                model: str = "reduced", centring: str = "P") -> tuple[float, ...]:
    """Cell parameters of a crystal system with the given volume; axis ratios log-normal.

    The oblique angles (monoclinic β, triclinic α β γ) come from one of two models:
    - ``reduced`` (default): each lattice row sits over the net below it at a uniformly random offset
      (c over the a-row for monoclinic; c over the ab-net, b over the a-row for triclinic), and the
      cell is then reduced as crystallographers report it (c reduced against a, β ≥ 90°; a Niggli
      cell for triclinic). No angle is preferred, so near-90° cells (pseudo-orthorhombic) are as
      common as the geometry makes them: with equal axes β is uniform over 90–116.6°, and long c
      axes crowd it toward 90°. A C-centred cell may only reduce a against 2c (against c would
      turn C into I), so its β reaches further, as in real C2/c cells. Nothing here is fitted to
      any structure set.
    - ``uniform``: the first generator's draws, kept to reproduce data sets built with it:
      β uniform on 90.5–125°, triclinic angles uniform on 65–118°.
    """
    _check_cell_model(model)
    for _ in range(100):
        r = np.exp(rng.normal(0.0, spread, 3))
        if model == "reduced" and system in ("monoclinic", "triclinic"):
            cell = _reduced_oblique(system, r, rng, centring)
            if cell is None:
                continue
            scale = (volume / gemmi.UnitCell(*cell).volume) ** (1 / 3)
            return (cell[0] * scale, cell[1] * scale, cell[2] * scale, *cell[3:])
        alpha = beta = gamma = 90.0
        if system == "triclinic":
            alpha, beta, gamma = rng.uniform(65, 118, 3)
        elif system == "monoclinic":
            beta = rng.uniform(90.5, 125.0)
        elif system in ("tetragonal",):
            r[1] = r[0]
        elif system in ("trigonal", "hexagonal"):
            r[1] = r[0]
            gamma = 120.0
        elif system == "cubic":
            r[:] = 1.0
        ca, cb, cg = np.cos(np.radians([alpha, beta, gamma]))
        vol_factor = 1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg
        if vol_factor <= 0.05:
            continue
        scale = (volume / (np.prod(r) * np.sqrt(vol_factor))) ** (1 / 3)
        a, b, c = r * scale
        return (float(a), float(b), float(c), float(alpha), float(beta), float(gamma))
    raise RuntimeError("could not draw a valid cell")


def _reduced_oblique(system: str, r: np.ndarray, rng: np.random.Generator, centring: str
                     ) -> tuple[float, ...] | None:
    """A monoclinic or triclinic cell from uniformly random row offsets (see ``random_cell``).

    ``r`` holds a, b and the heights of the rows (a·b·h = volume before scaling). None when the draw
    is not a reduced cell in the standard setting (a would reduce against c, or 2c if C-centred).
    """
    if system == "monoclinic":
        a, b, h = r
        u = rng.uniform(0.0, 0.5) * a           # c's offset along a, reduced against a
        c = float(np.hypot(h, u))
        step = 2.0 if centring.upper() == "C" else 1.0
        if u * a > (step * c) ** 2 / 2:
            return None
        return (float(a), float(b), c, 90.0, 90.0 + float(np.degrees(np.arctan2(u, h))), 90.0)
    va = np.array([r[0], 0.0, 0.0])
    vb = np.array([rng.uniform(-0.5, 0.5) * r[0], r[1], 0.0])
    vc = rng.uniform(-0.5, 0.5) * va + rng.uniform(-0.5, 0.5) * vb + np.array([0.0, 0.0, r[2]])
    lengths = [float(np.linalg.norm(v)) for v in (va, vb, vc)]
    angle = lambda x, y: float(np.degrees(np.arccos(x @ y / np.linalg.norm(x) / np.linalg.norm(y))))
    gv = gemmi.GruberVector(gemmi.UnitCell(*lengths, angle(vb, vc), angle(va, vc), angle(va, vb)), "P")
    gv.niggli_reduce()
    out = gv.get_cell()
    return (out.a, out.b, out.c, out.alpha, out.beta, out.gamma)


def _special_position(x: np.ndarray, rot: np.ndarray, tran: np.ndarray, rng) -> np.ndarray:
    """Average x over the cyclic group of a random operation: a point that operation fixes (if any).

    For g = (R, t) of rotation order k, the mean of x, g(x), …, g^(k-1)(x) is fixed by g whenever g
    has fixed points at all (screw axes and glides have none; the point then just moves, harmlessly).
    """
    g = int(rng.integers(1, len(rot)))
    r, t = rot[g], tran[g]
    acc, y, power = x.copy(), x.copy(), r.copy()
    for k in range(1, 7):
        if np.allclose(power, np.eye(3)):
            return (acc / k) % 1.0
        y = r @ y + t
        acc += y
        power = power @ r
    return x


def _min_distance_ok(crystal: Crystal, d_min: float) -> bool:
    rot, tran = operations(crystal.hall)
    imgs = (crystal.fract @ rot.transpose(0, 2, 1) + tran[:, None, :]).reshape(-1, 3) % 1.0
    imgs = np.unique(np.round(imgs, 5) % 1.0, axis=0)
    if len(imgs) > MAX_CELL_ATOMS:
        return False
    # distance from each asymmetric-unit site to every image (minimum image convention)
    delta = imgs[None, :, :] - crystal.fract[:, None, :] % 1.0
    delta -= np.round(delta)
    cart = delta @ crystal.orth_matrix.T
    dist = np.sqrt((cart**2).sum(-1))
    dist[dist < 1e-3] = np.inf  # the site itself
    return bool(dist.min() >= d_min)


SG_DRAWS = ("exact", "redraw")
AXIS_SPREAD = {"inorganic": 0.3, "organic": 0.35}   # σ of log axis ratios at axis_spread = 1
MAX_TRIES = 200     # attempts at one drawn space group before "exact" draws another


def generate(n: int, kind: str = "inorganic", seed: int | np.random.SeedSequence = 0, *,
             prior_power: float = 1.0, cell_model: str = "reduced", sg_draw: str = "exact",
             axis_spread: float = 1.0) -> list[Crystal]:
    """``n`` random crystals of one kind, reproducible from ``seed``; see ``random_cell`` for the
    cell models.

    ``axis_spread`` scales the log-normal spread of the axis ratios (``AXIS_SPREAD``). At 1 the longest axis exceeds 3 and 4 times the shortest in 0.04 and 0.008 of a
    build's cells, against 0.30 and 0.17 of the real hold-out's (docs/data.md): one long axis, common
    in molecular crystals, is rare in training at 1.

    An attempt fails when its atoms come too close or too many; high-symmetry groups fail most.
    ``sg_draw="exact"`` keeps the drawn space group until an attempt succeeds (``MAX_TRIES`` at most),
    so the crystals follow the prior. ``"redraw"`` draws a new group after each failure, as the
    generator did before the option: the prior is then skewed toward low symmetry (inorganic, 200k
    build: cubic 11.8 % against the prior's 17.3, hexagonal 6.1 against 10.6, P6₃/mmc and Fm-3m at
    0.47 of their share; docs/data.md)."""
    _check_cell_model(cell_model)
    if not (isinstance(axis_spread, (int, float)) and 0 < axis_spread <= 3):
        raise ValueError(f"axis_spread must be a number in (0, 3], not {axis_spread!r}")
    if sg_draw not in SG_DRAWS:
        raise ValueError(f"sg_draw must be one of {', '.join(SG_DRAWS)}, not {sg_draw!r}")
    rng = np.random.default_rng(seed)
    prior = _sg_prior(kind, float(prior_power))
    make = _organic if kind == "organic" else _inorganic
    tries = MAX_TRIES if sg_draw == "exact" else 1
    out = []
    while len(out) < n:
        number = int(rng.choice(230, p=prior)) + 1
        for _ in range(tries):
            crystal = make(number, rng, cell_model, axis_spread)
            if crystal is not None:
                break
        if crystal is not None:
            crystal.meta["generator"] = {"kind": kind, "prior_power": prior_power, "cell_model": cell_model,
                                         "sg_draw": sg_draw, "axis_spread": axis_spread}
            out.append(crystal)
    return out


def _choice(items, rng):
    names = [i[0] for i in items]
    w = np.array([i[1] for i in items], dtype=float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _inorganic(number: int, rng: np.random.Generator, cell_model: str, axis_spread: float = 1.0
               ) -> Crystal | None:
    hall = _hall(number)
    rot, tran = operations(hall)
    system = crystal_system(number)
    intermetallic = rng.random() < 0.2
    n_sites = int(np.clip(rng.geometric(0.3), 1, 10))
    cations = list(rng.choice(_METALS, size=int(rng.integers(1, 4)), replace=False))
    anions = [] if intermetallic else sorted({_choice(_ANIONS, rng) for _ in range(int(rng.integers(1, 3)))})
    species = cations + anions
    elements, fract = [], []
    for i in range(n_sites):
        el = species[i] if i < len(species) else species[int(rng.integers(len(species)))]
        x = rng.random(3)
        if rng.random() < 0.55 and len(rot) > 1:
            x = _special_position(x, rot, tran, rng)
            if rng.random() < 0.3:
                x = _special_position(x, rot, tran, rng)
        elements.append(str(el))
        fract.append(x)
    fract = np.array(fract)
    n = len(elements)
    probe = Crystal(cell=(10, 10, 10, 90, 90, 90), hall=hall, elements=elements, fract=fract,
                    occ=np.ones(n), u_iso=np.zeros(n))
    mult = probe.multiplicities
    if (mult).sum() > MAX_CELL_ATOMS:
        return None
    vols = np.array([_ANION_VOLUME.get(e) or 4.19 * gemmi.Element(e).covalent_r ** 3 * 1.6
                     for e in elements])
    volume = float((vols * mult).sum() * rng.uniform(0.9, 1.3))
    try:
        cell = random_cell(system, volume, rng, spread=AXIS_SPREAD["inorganic"] * axis_spread,
                           model=cell_model, centring=hall.lstrip("-")[0])
    except RuntimeError:
        return None
    if not (CELL_RANGE[0] <= min(cell[:3]) and max(cell[:3]) <= CELL_RANGE[1]):
        return None
    crystal = Crystal(cell=cell, hall=hall, elements=elements, fract=fract, occ=np.ones(n),
                      u_iso=rng.uniform(0.004, 0.025, n), source="synthetic")
    crystal.__dict__["multiplicities"] = mult  # same positions and group: multiplicities carry over
    if not _min_distance_ok(crystal, 1.2):
        return None
    return crystal


def _molecule(rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """A random tree of bonded heavy atoms plus hydrogens, in Cartesian Å, centred at the origin."""
    n_heavy = int(np.clip(rng.lognormal(np.log(18), 0.5), 4, 70))
    els = ["C"]
    pos = [np.zeros(3)]
    dirs = [rng.normal(size=3)]
    while len(els) < n_heavy:
        parent = int(rng.integers(max(0, len(els) - 4), len(els)))  # mostly chain-like growth
        for _ in range(8):
            v = dirs[parent] + rng.normal(scale=0.9, size=3)
            v /= np.linalg.norm(v)
            p = pos[parent] + v * rng.uniform(1.3, 1.55)
            if min(np.linalg.norm(p - q) for q in pos) > 1.25:
                break
        else:
            continue
        els.append(_choice(_ORGANIC_HEAVY, rng))
        pos.append(p)
        dirs.append(v)
    if rng.random() < 0.12:  # metal-organic: a metal centre
        els[int(rng.integers(len(els)))] = str(rng.choice(_ORGANIC_METALS[:19]))
    heavy = np.array(pos)
    h_pos = []
    for i, e in enumerate(els):
        if e in ("C", "N", "O") and rng.random() < {"C": 0.75, "N": 0.5, "O": 0.4}[e]:
            for _ in range(1 if e != "C" or rng.random() < 0.6 else 2):
                v = rng.normal(size=3)
                h_pos.append(heavy[i] + v / np.linalg.norm(v) * 1.0)
    if not h_pos:
        h_pos.append(heavy[0] + np.array([1.0, 0, 0]))
    allpos = np.vstack([heavy, np.array(h_pos)])
    return els + ["H"] * len(h_pos), allpos - heavy.mean(axis=0)


def _random_rotation(rng) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _organic(number: int, rng: np.random.Generator, cell_model: str, axis_spread: float = 1.0
             ) -> Crystal | None:
    hall = _hall(number)
    rot, tran = operations(hall)
    system = crystal_system(number)
    els, xyz = _molecule(rng)
    n_heavy = sum(e != "H" for e in els)
    z = len(rot)
    if z * len(els) > MAX_CELL_ATOMS:
        return None
    volume = z * n_heavy * rng.normal(18.0, 1.2)
    try:
        cell = random_cell(system, volume, rng, spread=AXIS_SPREAD["organic"] * axis_spread,
                           model=cell_model, centring=hall.lstrip("-")[0])
    except RuntimeError:
        return None
    if not (CELL_RANGE[0] <= min(cell[:3]) and max(cell[:3]) <= CELL_RANGE[1]):
        return None
    uc = gemmi.UnitCell(*cell)
    frac_m = np.array(uc.frac.mat)
    orth_m = np.array(uc.orth.mat)
    radius = np.linalg.norm(xyz, axis=1).max()
    mol = xyz @ _random_rotation(rng).T
    # Place the centroid where its symmetry copies are not on top of each other.
    best, best_d = None, -1.0
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    for _ in range(12):
        c = rng.random(3)
        imgs = (rot @ c + tran) % 1.0
        delta = imgs[1:, None, :] - c[None, None, :] + shifts[None]
        d = np.linalg.norm(delta @ orth_m.T, axis=-1).min() if len(imgs) > 1 else np.inf
        if d > best_d:
            best, best_d = c, d
        if d > 1.4 * radius:
            break
    fract = best + mol @ frac_m.T
    n = len(els)
    crystal = Crystal(cell=cell, hall=hall, elements=els, fract=fract, occ=np.ones(n),
                      u_iso=np.where(np.array(els) == "H", 1.2, 1.0) * rng.uniform(0.03, 0.06),
                      source="synthetic")
    crystal.__dict__["multiplicities"] = np.full(n, float(z))  # general positions
    return crystal
