"""Plugin loading: entry points, isolation of broken plugins, strict mode, conflicts, filtering."""
import json
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest

import crystalmela as cm
from crystalmela import plugins
from crystalmela.cli.main import main


def test_builtin_plugins_load_through_entry_points():
    infos, failures = plugins.list_plugins()
    names = {i.name for i in infos}
    assert {"core", "readers", "random_forest", "extra_trees", "cnn_flax", "lattice_fit"} <= names
    assert failures == []
    reg = cm.get_registry()
    assert {"random_forest", "extra_trees", "cnn_flax", "lattice_fit"} <= set(reg.classifiers)
    assert {"profile", "paper_peaks", "suzuki_inv_d2"} <= set(reg.features)
    assert reg.provider[("reader", "xy")] == "readers"


def test_core_does_not_import_jax():
    r = subprocess.run([sys.executable, "-c", "import sys, crystalmela; crystalmela.get_registry();"
                        "print(any(m.split('.')[0] in ('jax', 'flax') for m in sys.modules))"],
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


@pytest.fixture
def fake_entry_points(tmp_path, monkeypatch):
    """Add entry points for modules written to tmp_path, beside the real ones."""
    real = plugins.entry_points
    extra = []

    def add(name, source):
        mod = f"cmtest_{name}"
        (tmp_path / f"{mod}.py").write_text(textwrap.dedent(source))
        extra.append(EntryPoint(name=name, value=mod, group="crystalmela"))

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "entry_points", lambda group: list(real(group=group)) + extra)
    return add


def test_import_failure_is_recorded_not_fatal(fake_entry_points, capsys):
    fake_entry_points("broken", "raise ImportError('needs libfoo')")
    infos, failures = plugins.list_plugins()
    assert [f.name for f in failures] == ["broken"]
    assert "ImportError: needs libfoo" in failures[0].error
    assert "xy" in cm.get_registry().readers  # everything else still works
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "failed to load" in out and "needs libfoo" in out


def test_strict_mode_raises(fake_entry_points, monkeypatch):
    fake_entry_points("broken", "raise ImportError('needs libfoo')")
    monkeypatch.setenv("CRYSTALMELA_STRICT_PLUGINS", "1")
    with pytest.raises(cm.PluginLoadError, match="broken"):
        cm.get_registry()


def test_hook_that_raises_is_isolated(fake_entry_points):
    fake_entry_points("bad_hook", """
        import crystalmela
        @crystalmela.hookimpl
        def crystalmela_readers():
            raise RuntimeError("oops")
    """)
    reg = cm.get_registry()
    assert "xy" in reg.readers
    assert any(f.name == "bad_hook" and "RuntimeError: oops" in f.error for f in reg.failures)


def test_duplicate_name_is_refused_naming_both(fake_entry_points):
    fake_entry_points("zzdup", """
        import crystalmela
        @crystalmela.hookimpl
        def crystalmela_readers():
            return [crystalmela.ReaderSpec("xy", (".xy",), read=lambda p: None, sniff=lambda h, p: 1.0)]
    """)
    reg = cm.get_registry()
    assert reg.provider[("reader", "xy")] == "readers"
    f = [f for f in reg.failures if f.name == "zzdup"][0]
    assert "already provided by plugin 'readers'" in f.error


def test_wrong_record_type_and_hook_typo(fake_entry_points):
    fake_entry_points("wrongtype", """
        import crystalmela
        @crystalmela.hookimpl
        def crystalmela_classifiers():
            return ["not a spec"]
    """)
    fake_entry_points("typo", """
        import crystalmela
        @crystalmela.hookimpl
        def crystalmela_reader():
            return []
    """)
    _, failures = plugins.list_plugins()
    errors = {f.name: f.error for f in failures}
    assert "expected ClassifierSpec" in errors["wrongtype"]
    assert "unknown hook(s) crystalmela_reader" in errors["typo"]


def test_plugin_filter_setting(monkeypatch):
    monkeypatch.setenv("CRYSTALMELA_PLUGINS", "readers")
    reg = cm.get_registry()
    assert reg.classifiers == {} and "xy" in reg.readers
    assert "profile" in reg.features  # the core's own plugin always loads


def test_plugins_json(capsys):
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    readers = [p for p in data["plugins"] if p["name"] == "readers"][0]
    assert readers["distribution"] == "crystalmela-readers" and readers["version"]
    assert readers["hooks"] == ["crystalmela_readers"]


def test_readers_command_lists_formats(capsys):
    assert main(["readers", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert ".xrdml" in rows["xrdml"]["extensions"] and ".raw" in rows["bruker_raw"]["extensions"]
    assert len(rows) >= 11


@pytest.mark.parametrize("kw,msg", [
    (dict(name="Bad Name"), "lower-case"),
    (dict(extensions=("XY",)), "extension"),
])
def test_reader_spec_validation(kw, msg):
    args = dict(name="ok", extensions=(".ok",), read=lambda p: None, sniff=lambda h, p: 0.0) | kw
    with pytest.raises(ValueError, match=msg):
        cm.ReaderSpec(**args)


def test_classifier_spec_validation():
    with pytest.raises(ValueError, match="unknown data sets"):
        cm.ClassifierSpec("c", "1", feature="profile", load=lambda d: None, datasets=("mof",))
    with pytest.raises(ValueError, match="classes must be"):
        cm.ClassifierSpec("c", "1", feature="profile", load=lambda d: None, classes=("a", "b"))
