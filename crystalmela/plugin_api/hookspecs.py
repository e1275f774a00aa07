"""Every hook a crystalmela plugin can implement. Each has a ``crystalmela_`` prefix.

A plugin is a module (or object) with functions marked ``@crystalmela.hookimpl`` and an entry point in
the ``crystalmela`` group of its package metadata::

    [project.entry-points.crystalmela]
    my_format = "my_package.plugin"
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pluggy

from crystalmela.plugin_api.specs import ClassifierSpec, FeatureExtractor, ReaderSpec

hookspec = pluggy.HookspecMarker("crystalmela")
hookimpl = pluggy.HookimplMarker("crystalmela")   # what a plugin marks its hook functions with


@hookspec
def crystalmela_readers() -> Iterable[ReaderSpec]:
    """Return the file formats this plugin reads.

    Every plugin contributes; the core chooses among all readers (explicit ``--reader``, then the
    extension, then content sniffing) so that users can list formats and a failed match names every
    reader tried.

    Example::

        @hookimpl
        def crystalmela_readers():
            return [ReaderSpec("two_col", (".two",), read=read_two_col, sniff=sniff_two_col)]
    """


@hookspec
def crystalmela_feature_extractors() -> Iterable[FeatureExtractor]:
    """Return the feature extractors this plugin provides (pattern on a grid → model input array).

    Example::

        @hookimpl
        def crystalmela_feature_extractors():
            return [FeatureExtractor("n_peaks", "1", extract=lambda p: np.array([count_peaks(p.y)]))]
    """


@hookspec
def crystalmela_classifiers() -> Iterable[ClassifierSpec]:
    """Return the crystal-system classifiers this plugin provides.

    The core calls each classifier's model outside the hook, one at a time, so a failing model is
    reported in the result's ``errors`` while the others still answer.

    Example::

        @hookimpl
        def crystalmela_classifiers():
            return [ClassifierSpec("my_model", "1.0", feature="profile", load=load_my_model)]
    """


@hookspec(firstresult=True)
def crystalmela_combine(probabilities: Mapping[str, np.ndarray], weights: Mapping[str, float],
                        dataset: str) -> np.ndarray | None:
    """Combine per-model probabilities into the ensemble distribution.

    :param probabilities: model name → array of 7 probabilities (order of ``CRYSTAL_SYSTEMS``).
    :param weights: model name → weight the user asked for (missing names mean 1.0).
    :param dataset: the data set the models were chosen for.
    :return: 7 probabilities, or ``None`` to let the next combiner answer.

    Stops at first non-None result. The core's weighted geometric mean is registered ``trylast``, so any
    combiner plugin answers first.

    Example::

        @hookimpl
        def crystalmela_combine(probabilities, weights, dataset):
            return np.exp(np.mean([np.log(p + 1e-9) for p in probabilities.values()], axis=0))
    """


@hookspec
def crystalmela_ensemble_fits() -> Iterable[Path]:
    """Folders holding ensemble fits: ``<dataset>.json`` records that ``crystalmela calibrate`` wrote,
    each naming the sha256 of every model's weights it was fitted for.

    A fit is used only while exactly the models it names are loaded, so a package offering fits should
    depend on the model packages they were fitted for. Folders are searched after
    ``$CRYSTALMELA_ENSEMBLES``, in plugin order; the first record that matches the loaded models wins.
    ``crystalmela calibrate`` writes to the first folder unless given ``--out``.

    Example::

        @hookimpl
        def crystalmela_ensemble_fits():
            return [Path(__file__).parent / "fits"]
    """


__all__ = ["hookimpl", "hookspec", "crystalmela_classifiers", "crystalmela_combine", "crystalmela_ensemble_fits",
           "crystalmela_feature_extractors", "crystalmela_readers"]
