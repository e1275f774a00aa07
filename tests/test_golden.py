"""The shipped models answer exactly as recorded in tests/data/golden (see tests/golden.py)."""
import json

import numpy as np
import pytest

import golden


@pytest.fixture(scope="module")
def recorded():
    return json.loads(golden.OUT.read_text())


@pytest.mark.parametrize("f", golden.FILES)
def test_shipped_predictions_are_unchanged(recorded, f):
    import crystalmela
    for ds in golden.DATASETS:
        want = recorded[f"{f}|{ds}"]
        pred = crystalmela.predict(golden.HERE / "data" / f, dataset=ds)
        assert pred.errors == want["errors"]
        assert pred.evidence_data == want["evidence_data"]
        assert pred.temperatures == pytest.approx(want["temperatures"], abs=1e-12)
        for name, probs in want["per_model"].items():
            got = pred.per_model[name]
            np.testing.assert_allclose([got[s] for s in sorted(probs)], [probs[s] for s in sorted(probs)],
                                       rtol=0, atol=1e-9, err_msg=f"{f} {ds} {name}")
        assert set(pred.per_model) == set(want["per_model"])
        np.testing.assert_allclose([pred.ensemble[s] for s in sorted(want["ensemble"])],
                                   [want["ensemble"][s] for s in sorted(want["ensemble"])], rtol=0, atol=1e-9)
