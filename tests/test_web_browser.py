"""The pages in a real browser: Playwright driving Debian's Chromium against `crystalmela serve`.

Register, log out, log in, upload the bundled RAW scan, see both plots drawn and the history row;
then a second user cannot open the first user's run. Needs ``chromium`` (``apt-get install
chromium``; ``.ci/run`` installs it) or ``CRYSTALMELA_CHROMIUM=/path/to/chrome``.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "LiCoO2.RAW"


def _chromium() -> str | None:
    env = os.environ.get("CRYSTALMELA_CHROMIUM")
    if env:
        return env
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tmp_path_factory.mktemp("web")
    proc = subprocess.Popen([sys.executable, "-m", "crystalmela", "serve", "--port", str(port),
                             "--data-dir", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(f"{base}/api/models", timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _account(page, base, path, email):
    page.goto(f"{base}{path}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "correct horse")
    page.click("#submit")
    page.wait_for_url(f"{base}/")


def test_register_login_upload_plot_history_and_privacy(server, browser):
    ana = browser.new_context().new_page()
    _account(ana, server, "/register", "ana@lab.org")
    ana.click("#logout")
    ana.wait_for_url(f"{server}/login")
    _account(ana, server, "/login", "ana@lab.org")
    ana.set_input_files("input[name=files]", str(EXAMPLE))
    ana.click("#predict")
    ana.wait_for_selector(".pattern-plot .main-svg", timeout=30_000)     # Plotly drew the pattern
    ana.wait_for_selector(".probability-plot .main-svg")
    assert "Top-1:" in ana.inner_text("main")
    bars = ana.locator(".probability-plot .legend .traces").count()
    from crystalmela.plugins import get_registry
    assert bars == len(get_registry().classifiers) + 1                # every installed model + ensemble
    run_url = ana.url if "/runs/" in ana.url else None
    ana.goto(f"{server}/history")
    row = ana.locator("#history tr", has_text="LiCoO2.RAW")
    assert row.count() == 1
    row.locator("a", has_text="Detail").click()
    ana.wait_for_selector(".pattern-plot .main-svg")
    run_url = run_url or ana.url

    bob = browser.new_context().new_page()
    _account(bob, server, "/register", "bob@lab.org")
    response = bob.goto(run_url)
    assert response.status == 404 and "no run" in bob.inner_text("main")
    bob.goto(f"{server}/history")
    assert "LiCoO2.RAW" not in bob.inner_text("main")
