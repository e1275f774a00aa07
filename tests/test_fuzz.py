"""The fast subset of ``benchmarks/fuzz_readers.py``: malformed files in every format give a result
or one line, junk is refused or flagged by the gate, valid re-encodings are read."""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "fuzz_readers.py"


def test_fuzzed_files_never_crash_and_junk_is_never_answered_with_confidence():
    spec = importlib.util.spec_from_file_location("fuzz_readers", SCRIPT)
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    report = fuzz.run(["extra_trees"], quick=True, seed=1)
    kinds = report["by_kind"]
    assert report["variants"] >= 100 and set(kinds) == {"malformed", "valid", "junk"}
    assert sum(kinds["junk"].values()) >= 10 and sum(kinds["valid"].values()) >= 60
    for count in ("crashes", "over_limits", "junk_answered_without_unsure", "valid_refused"):
        assert report[count] == [], (count, report[count][:3])
