"""Contract checks plugin authors run in their own test suites (and we run on every built-in plugin).

    from crystalmela.plugin_api.testing import check_reader
    def test_my_reader(tmp_path):
        check_reader(MY_SPEC, good_files=[tmp_path / "a.xy"], tmp_path=tmp_path)

Each check raises ``AssertionError`` with a sentence saying which rule was broken.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from crystalmela.plugin_api.errors import CrystalmelaError, ReaderError
from crystalmela.plugin_api.pattern import Pattern
from crystalmela.plugins import for_features, with_card
from crystalmela.plugin_api.specs import ClassifierSpec, FeatureExtractor, ReaderSpec
from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

GARBAGE = bytes(range(256)) * 64


def _bad_inputs(tmp_path: Path, ext: str) -> dict[str, Path]:
    cases = {
        "empty": b"",
        "binary garbage": GARBAGE,
        "text prose": b"This is not a diffraction pattern.\nJust words.\n",
        "one column": b"\n".join(str(10 + i).encode() for i in range(50)) + b"\n",
    }
    out = {}
    for name, data in cases.items():
        p = tmp_path / f"bad_{name.replace(' ', '_')}{ext}"
        p.write_bytes(data)
        out[name] = p
    return out


def check_reader(spec: ReaderSpec, good_files: Iterable[Path] = (), tmp_path: Path | None = None) -> None:
    """A reader reads its good files into valid Patterns and refuses junk with a ReaderError only.

    - ``sniff`` returns a float in [0, 1] and never raises, even on garbage;
    - ``read`` of each good file returns a :class:`Pattern` with ≥ 2 points;
    - ``read`` of empty, binary, prose and one-column files raises :class:`ReaderError` (not another
      exception), whose message names the file.
    """
    assert isinstance(spec, ReaderSpec), f"{spec!r} is not a ReaderSpec"
    for f in good_files:
        f = Path(f)
        head = f.read_bytes()[:65536]
        score = spec.sniff(head, f)
        assert isinstance(score, float) and 0.0 <= score <= 1.0, f"{spec.name}.sniff returned {score!r}"
        assert score > 0, f"{spec.name}.sniff does not recognise its own good file {f.name}"
        pat = spec.read(f)
        assert isinstance(pat, Pattern), f"{spec.name}.read returned {type(pat).__name__}"
        assert len(pat) >= 2
    if tmp_path is None:
        return
    ext = spec.extensions[0] if spec.extensions else ".dat"
    for case, f in _bad_inputs(Path(tmp_path), ext).items():
        score = spec.sniff(f.read_bytes()[:65536], f)
        assert isinstance(score, float) and 0.0 <= score <= 1.0, f"{spec.name}.sniff({case}) returned {score!r}"
        try:
            spec.read(f)
        except ReaderError as exc:
            assert str(f.name) in str(exc) or exc.path, f"{spec.name}: error for {case} does not name the file"
            continue
        except Exception as exc:  # noqa: BLE001 - that is the point of the check
            raise AssertionError(f"{spec.name}.read({case}) raised {type(exc).__name__}: {exc}; "
                                 "expected ReaderError") from exc
        if case != "one column":  # some formats (FullProf counts) legitimately read bare numbers
            raise AssertionError(f"{spec.name}.read accepted a {case} file")


def check_feature_extractor(spec: FeatureExtractor, pattern_on_grid: Pattern) -> np.ndarray:
    """Features are a finite numeric array, deterministic for the same input."""
    assert isinstance(spec, FeatureExtractor), f"{spec!r} is not a FeatureExtractor"
    a = np.asarray(spec.extract(pattern_on_grid))
    b = np.asarray(spec.extract(pattern_on_grid))
    assert a.dtype.kind in "fiu", f"{spec.name} returned dtype {a.dtype}"
    assert a.size > 0 and np.all(np.isfinite(a)), f"{spec.name} returned empty or non-finite features"
    assert np.array_equal(a, b), f"{spec.name} is not deterministic"
    return a


def check_classifier(spec: ClassifierSpec, feature: FeatureExtractor, pattern: Pattern,
                     datasets: Iterable[str] | None = None) -> None:
    """For each data set the classifier offers, ``load`` gives a model whose ``predict_proba`` on a batch
    of two returns a (2, 7) array of probabilities (non-negative, rows summing to 1). A data set whose
    model is not installed must raise ModelNotAvailableError (a CrystalmelaError), nothing else."""
    assert isinstance(spec, ClassifierSpec), f"{spec!r} is not a ClassifierSpec"
    assert spec.feature == feature.name, f"{spec.name} needs feature {spec.feature!r}, got {feature.name!r}"
    assert tuple(spec.classes) == CRYSTAL_SYSTEMS
    x = np.asarray(feature.extract(pattern.to_grid(spec.grid)))
    batch = np.stack([x, x])
    for ds in datasets or spec.datasets:
        try:
            model = spec.load(ds)
        except CrystalmelaError:
            continue
        adapted = for_features(with_card(model), feature)
        assert adapted is not None, (f"{spec.name}/{ds}: trained on {feature.name} version "
                                     f"{model.card.feature_version}, not {feature.version} nor a prefix of it")
        p = np.asarray(adapted.predict_proba(batch))
        assert p.shape == (2, len(CRYSTAL_SYSTEMS)), f"{spec.name}/{ds}: predict_proba shape {p.shape}"
        assert np.all(p >= 0) and np.allclose(p.sum(axis=1), 1.0, atol=1e-4), f"{spec.name}/{ds}: not probabilities"


__all__ = ["check_classifier", "check_feature_extractor", "check_reader"]
