"""The typed records plugins hand to the core: what a reader, a feature extractor and a classifier are.

Hooks return these records (``crystalmela_readers() -> [ReaderSpec, ...]``); the core checks them,
refuses duplicate names, and calls their functions one at a time so one broken plugin cannot take the
others down.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, runtime_checkable

import numpy as np

from crystalmela.plugin_api.pattern import PAPER_GRID, GridSpec, Pattern
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS, DATASETS

if TYPE_CHECKING:
    from crystalmela.plugin_api.modelcard import ModelCard

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"{kind} name {name!r} must be lower-case letters, digits and '_'")


@dataclass(frozen=True)
class ReaderSpec:
    """A file format.

    :param name: short id used by ``--reader`` (e.g. ``xy``).
    :param extensions: lower-case suffixes with the dot (``(".xy", ".xye")``); may be empty.
    :param read: ``read(path) -> Pattern``; raises :class:`crystalmela.ReaderError` naming the line or
        byte offset on bad input. It should not set ``source``/``reader``: the core does.
    :param sniff: ``sniff(head, path) -> float`` in [0, 1]: how sure the reader is that a file starting
        with ``head`` (its first 64 KiB) is its format. Must never raise; 0 means "not mine".
    :param description: one line shown by ``crystalmela readers``.
    """

    name: str
    extensions: tuple[str, ...]
    read: Callable[[Path], Pattern]
    sniff: Callable[[bytes, Path], float]
    description: str = ""

    def __post_init__(self):
        _check_name("reader", self.name)
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for ext in self.extensions:
            if not (isinstance(ext, str) and ext.startswith(".") and ext == ext.lower()):
                raise ValueError(f"reader {self.name}: extension {ext!r} must be lower-case and start with '.'")
        if not callable(self.read) or not callable(self.sniff):
            raise ValueError(f"reader {self.name}: read and sniff must be callables")


@dataclass(frozen=True)
class Evidence:
    """What ``FeatureExtractor.explain`` may return instead of bare lines: the lines a person reads
    and the same findings as JSON-ready ``data`` for programs (lattice_fit: each cell's parameters and
    figures of merit), so an API user never parses the text to take a cell on to a Le Bail fit.

    ``data`` holds only what JSON holds (dict, list, str, finite float, int, bool, None; keys are
    strings): it goes out unchanged in ``Prediction.evidence_data`` and the web API.
    """

    lines: list[str]
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.lines, (list, tuple)) or not all(isinstance(x, str) for x in self.lines):
            raise ValueError("evidence lines must be a list of strings")
        object.__setattr__(self, "lines", list(self.lines))
        if not isinstance(self.data, dict):
            raise ValueError(f"evidence data must be a dict, not {type(self.data).__name__}")
        problem = _json_problem(self.data, "data")
        if problem:
            raise ValueError(f"evidence {problem}")


def _json_problem(value, where: str) -> str | None:
    """Where ``value`` holds something JSON cannot carry as is (a NumPy number, NaN, a tuple key …),
    or None."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value}, not a finite number"
    if isinstance(value, list):
        return next((p for i, v in enumerate(value) if (p := _json_problem(v, f"{where}[{i}]"))), None)
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{where} has the key {k!r}: keys must be strings"
            if (p := _json_problem(v, f"{where}[{json.dumps(k)}]")):
                return p
        return None
    return f"{where} is a {type(value).__name__}: only dict, list, str, int, float, bool and None go into JSON"


@dataclass(frozen=True)
class FeatureExtractor:
    """Turns a pattern already on a classifier's grid into that classifier's input array.

    :param name: id a :class:`ClassifierSpec` refers to in ``feature``.
    :param version: bump when the output changes, so models record which features they saw.
    :param extract: ``extract(pattern_on_grid) -> np.ndarray`` (1-D or N-D for one pattern).
    :param prefixes: earlier versions whose output is the first ``n`` numbers of this one's (1-D
        features), ``{version: n}``: a version that only appended columns. Models trained on such a
        version keep working, fed those first ``n`` columns, so the models of one classifier can be
        retrained one data set at a time.
    :param explain: optional ``explain(pattern_on_grid) -> list[str] | Evidence``: a few lines saying
        what the features found that a person can check (lattice_fit: the unit cells that index the
        peaks, with their figures of merit), and with :class:`Evidence` the same as data for programs.
        ``predict`` shows them under the probabilities of every model fed these features. It gets the
        pattern ``extract`` got; it must not change the answer, and a failure in it becomes a note,
        never a lost prediction.
    """

    name: str
    version: str
    extract: Callable[[Pattern], np.ndarray]
    description: str = ""
    prefixes: dict[str, int] = field(default_factory=dict)
    explain: Callable[[Pattern], "list[str] | Evidence"] | None = None

    def __post_init__(self):
        _check_name("feature extractor", self.name)
        if not callable(self.extract):
            raise ValueError(f"feature extractor {self.name}: extract must be callable")
        if self.explain is not None and not callable(self.explain):
            raise ValueError(f"feature extractor {self.name}: explain must be callable or None")
        for old, n in self.prefixes.items():
            if old == self.version or not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ValueError(f"feature extractor {self.name}: prefixes maps an earlier version to a "
                                 f"positive number of columns, not {old!r}: {n!r}")


@runtime_checkable
class Model(Protocol):
    """What ``ClassifierSpec.load`` returns: scikit-learn's ``predict_proba`` contract, and its card.

    ``predict_proba(X)`` takes a batch (first axis = patterns) of the classifier's feature arrays and
    returns an ``(n, 7)`` array whose columns follow :data:`crystalmela.CRYSTAL_SYSTEMS`.

    ``card``: the :class:`crystalmela.plugin_api.modelcard.ModelCard` the weights were read with
    (``read_verified``), or None. With a card the core applies the preprocessing the model was
    trained with (``card.settings["preprocess"]``), its fitted temperature (``card.calibration``) and
    the ensemble fitted for its weights (``card.sha256``). A model object without the attribute is
    given ``card = None`` by the registry when it is loaded.
    """

    card: "ModelCard | None"

    def predict_proba(self, features: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ClassifierSpec:
    """A crystal-system classifier.

    :param name: id used by ``--models`` (e.g. ``random_forest``).
    :param version: the plugin's model-code version, shown beside its probabilities.
    :param feature: name of the :class:`FeatureExtractor` that builds its input.
    :param grid: the grid its training patterns were on; the core puts every input on it.
    :param datasets: the data sets (of ``full``, ``organic``, ``inorganic``) it offers models for.
    :param load: ``load(dataset) -> Model``; raises :class:`crystalmela.ModelNotAvailableError` when no
        trained model is available. Called once per data set and cached.
    :param train: optional ``train(request: crystalmela.training.request.TrainRequest) -> ModelCard``; writes
        the weights and ``model_card.json`` into ``request.out_dir``. ``crystalmela train`` calls it.
    :param load_dir: optional ``load_dir(folder) -> Model``: load a model folder that ``train`` wrote
        (weights + card, verified). ``crystalmela evaluate`` needs it to score the models it trains
        for cross-validation.
    :param model_root: folder holding ``<dataset>/model_card.json`` + weights (where ``load`` looks and
        where ``crystalmela train`` writes by default).
    """

    name: str
    version: str
    feature: str
    load: Callable[[str], Model]
    grid: GridSpec = PAPER_GRID
    datasets: tuple[str, ...] = DATASETS
    description: str = ""
    classes: tuple[str, ...] = field(default=CRYSTAL_SYSTEMS)
    train: Callable | None = None
    model_root: str | None = None
    load_dir: Callable[[Path], Model] | None = None

    def __post_init__(self):
        _check_name("classifier", self.name)
        object.__setattr__(self, "datasets", tuple(self.datasets))
        unknown = set(self.datasets) - set(DATASETS)
        if unknown:
            raise ValueError(f"classifier {self.name}: unknown data sets {sorted(unknown)}; "
                             f"expected some of {DATASETS}")
        if tuple(self.classes) != CRYSTAL_SYSTEMS:
            raise ValueError(f"classifier {self.name}: classes must be {CRYSTAL_SYSTEMS} in that order")
        if not isinstance(self.grid, GridSpec):
            raise ValueError(f"classifier {self.name}: grid must be a GridSpec")
        if not callable(self.load):
            raise ValueError(f"classifier {self.name}: load must be callable")


__all__ = ["ClassifierSpec", "Evidence", "FeatureExtractor", "Model", "ReaderSpec"]
