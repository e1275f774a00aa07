"""The tree is the architecture: plugins import only the declared plugin API, prediction never loads
simulation or training code, and every plugin-API module declares what it exports."""
from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _crystalmela_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return [m for m in found if m == "crystalmela" or m.startswith("crystalmela.")]


@pytest.mark.parametrize("folder", ["plugins", "readers"])
def test_built_in_plugins_import_only_the_plugin_api(folder):
    wrong = {f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / folder).rglob("*.py")
             for m in _crystalmela_imports(p) if not m.startswith("crystalmela.plugin_api")}
    assert not wrong, sorted(wrong)


def test_every_plugin_api_module_declares_what_it_exports():
    import crystalmela.plugin_api as api
    for info in pkgutil.iter_modules(api.__path__):
        module = importlib.import_module(f"crystalmela.plugin_api.{info.name}")
        names = getattr(module, "__all__", None)
        assert names, f"{module.__name__} declares no __all__"
        assert all(hasattr(module, n) for n in names), module.__name__
    assert all(hasattr(api, n) for n in api.__all__)


def test_predicting_loads_no_simulation_training_or_scikit_learn():
    code = ("import sys, crystalmela; crystalmela.predict('examples/LiCoO2.RAW');"
            "print(sorted(m for m in sys.modules if m.startswith(('crystalmela.simulation', "
            "'crystalmela.training', 'crystalmela.evaluation', 'crystalmela.dataset', 'sklearn'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_crystalmela_loads_no_scipy():
    code = "import sys, crystalmela; print(sorted(m for m in sys.modules if m.startswith('scipy')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
