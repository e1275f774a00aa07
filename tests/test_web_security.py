"""The web service hardened: log-in throttling, revocable sessions, password and e-mail rules,
security headers, body limits while streaming, stored files as downloads, and the former 500s."""
from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from crystalmela.web import service
from crystalmela.web.app import create_app
from crystalmela.web.guards import SMALL_BODY, BodyLimit
from crystalmela.web.settings import WebSettings

EXAMPLE = Path(__file__).parent.parent / "examples" / "LiCoO2.RAW"
ANA = {"email": "ana@lab.org", "password": "correct horse"}


@pytest.fixture
def settings(tmp_path):
    return WebSettings(data_dir=tmp_path / "web", max_upload_mb=1.0, max_files=3, max_request_mb=2.0)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


def _register(c, body=ANA):
    r = c.post("/api/register", json=body)
    assert r.status_code == 201, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


# ---------------------------------------------------------------------------- log-in throttling

def test_failed_logins_are_throttled_per_account_even_with_the_right_password_after(client):
    _register(client)
    client.post("/api/logout", headers={"X-CSRF-Token": client.post("/api/login", json=ANA).json()["csrf_token"]})
    for _ in range(5):
        assert client.post("/api/login", json={**ANA, "password": "wrong wrong"}).status_code == 401
    r = client.post("/api/login", json=ANA)
    assert r.status_code == 429 and "too many failed attempts" in r.text and int(r.headers["Retry-After"]) > 0
    page = client.get("/login")
    tok = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/login", data={**ANA, "csrf_token": tok})
    assert r.status_code == 429 and "Retry-After" in r.headers


def test_throttle_counts_per_client_too_and_forgets_after_the_window():
    now = [0.0]
    t = service.LoginThrottle(per_account=5, per_client=3, window_s=60, clock=lambda: now[0])
    for i in range(3):                      # three accounts sprayed from one client
        t.failed(f"u{i}@lab.org", "10.0.0.1")
    with pytest.raises(service.ServiceError) as e:
        t.check("someone@lab.org", "10.0.0.1")
    assert e.value.status == 429
    t.check("someone@lab.org", "10.0.0.2")  # another client is not held up
    now[0] = 61
    t.check("someone@lab.org", "10.0.0.1")


def test_an_unknown_address_costs_a_password_hash_like_a_known_one(client, monkeypatch):
    """Login took 120 ms for a known address and 2 ms for an unknown one: the addresses could be
    told apart. Now both verify one argon2 hash."""
    _register(client)
    calls = []
    real = service._hasher

    class Spy:
        def verify(self, h, p):
            calls.append(h)
            return real.verify(h, p)
    monkeypatch.setattr(service, "_hasher", Spy())
    for email in ("ana@lab.org", "nobody@lab.org"):
        r = client.post("/api/login", json={"email": email, "password": "wrong wrong"})
        assert r.status_code == 401 and r.json()["detail"] == "wrong e-mail or password"
    assert len(calls) == 2


# ---------------------------------------------------------------------------- sessions

def test_logout_ends_the_session_on_the_server(client):
    h = _register(client)
    cookie = client.cookies.get("crystalmela_session")
    assert client.get("/api/runs").status_code == 200
    assert client.post("/api/logout", headers=h).status_code == 200
    client.cookies.set("crystalmela_session", cookie)           # a copy of the cookie kept
    assert client.get("/api/runs").status_code == 401
    assert client.get("/history", follow_redirects=False).status_code == 303


# ---------------------------------------------------------------------------- accounts

@pytest.mark.parametrize("password, message", [
    ("password", "at least 10"), ("12345678", "at least 10"), (" " * 10, "choose another password"),
    ("password12", "choose another password"), ("qwertyuiop", "choose another password"),
    ("x" * 5_000, "at most 128"), ("ana@lab.org1", "choose another password"),
])
def test_weak_or_absurd_passwords_are_refused(client, password, message):
    r = client.post("/api/register", json={"email": "ana@lab.org", "password": password})
    assert r.status_code == 422 and message in r.text


def test_a_100_000_character_password_is_refused_unread(client):
    r = client.post("/api/register", json={"email": "ana@lab.org", "password": "x" * 100_000})
    assert r.status_code == 413


def test_the_register_form_states_the_password_rules(client):
    page = client.get("/register").text
    assert service.PASSWORD_RULES in page and 'minlength="10"' in page and 'maxlength="128"' in page


@pytest.mark.parametrize("email", ["a\x00b@lab.org", "ana\u202egro.bal@x.org", "ana@lab", "ana@@lab.org", ""])
def test_addresses_with_control_or_bidi_characters_are_refused(client, email):
    r = client.post("/api/register", json={"email": email, "password": "correct horse"})
    assert r.status_code == 422 and "not an e-mail address" in r.text


# ---------------------------------------------------------------------------- headers and files

def test_every_response_carries_the_security_headers(client):
    h = _register(client)
    for r in (client.get("/login"), client.get("/api/models"), client.get("/nope"),
              client.post("/api/predict", headers=h, files=[("files", ("a.xy", b""))])):
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self' 'nonce-" in csp and "unsafe-inline'; style" not in csp


def test_the_results_page_script_carries_the_responses_nonce(client):
    _register(client)
    page = client.get("/")
    tok = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/predict", data={"csrf_token": tok, "models": ["extra_trees"]},
                    files=[("files", ("LiCoO2.RAW", EXAMPLE.read_bytes()))])
    nonce = r.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in r.text


def test_a_stored_upload_is_a_download_never_a_page(client):
    h = _register(client)
    evil = b"<html><script>alert(document.cookie)</script></html>"
    r = client.post("/api/predict", headers=h, files=[("files", ("evil.html", evil))])
    run = r.json()["runs"][0]
    for url in (f"/api/runs/{run['id']}/file", f"/runs/{run['id']}/file"):
        f = client.get(url)
        assert f.content == evil and f.headers["content-type"] == "application/octet-stream"
        assert f.headers["x-content-type-options"] == "nosniff" and f.headers["content-disposition"].startswith("attachment")


def test_api_docs_come_from_the_installed_package_or_are_off(settings, tmp_path):
    with TestClient(create_app(settings)) as c:
        page = c.get("/docs").text
        assert "/static/swagger/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
        assert c.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
        assert c.get("/redoc").status_code == 404 and c.get("/openapi.json").status_code == 200
    off = settings.model_copy(update={"api_docs": False, "data_dir": tmp_path / "off"})
    with TestClient(create_app(off)) as c:
        assert c.get("/docs").status_code == 404 and c.get("/openapi.json").status_code == 404


# ---------------------------------------------------------------------------- body limits

def test_a_declared_oversize_body_is_refused_before_it_is_read(client):
    h = _register(client)
    r = client.post("/api/predict", headers={**h, "Content-Length": str(50 * 1024 * 1024)}, content=b"x" * 10)
    assert r.status_code == 413 and "the upload limit" in r.text


def test_an_anonymous_upload_is_cut_after_64_kb(client):
    r = client.post("/api/predict", files=[("files", ("big.xy", b"1 2\n" * 100_000))])
    assert r.status_code == 413 and "log in to upload" in r.text


def test_a_streamed_body_is_cut_as_soon_as_it_passes_the_limit():
    """No Content-Length (chunked): the limit counts the bytes as they arrive and stops reading."""
    read = []

    async def app(scope, receive, send):
        while True:
            m = await receive()
            read.append(len(m.get("body", b"")))
            if not m.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    chunks = [{"type": "http.request", "body": b"x" * 16384, "more_body": True}] * 1000
    sent = []

    async def receive():
        return chunks.pop()

    async def send(m):
        sent.append(m)

    guard = BodyLimit(app, upload_paths=("/up",), upload_limit=10**9)
    asyncio.run(guard({"type": "http", "path": "/other", "headers": []}, receive, send))
    assert sent[0]["status"] == 413 and sum(read) <= SMALL_BODY and len(chunks) > 990


def test_json_bodies_are_small(client):
    r = client.post("/api/login", content=b'{"email": "' + b"a" * 100_000 + b'"}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 413


# ---------------------------------------------------------------------------- the former 500s

@pytest.mark.parametrize("name", ["..", ".", "../..", "/"])
def test_an_upload_named_dot_dot_is_stored_and_the_files_after_it_too(client, name):
    h = _register(client)
    r = client.post("/api/predict", headers=h, data={"models": "extra_trees"},
                    files=[("files", (name, EXAMPLE.read_bytes())), ("files", ("b.RAW", EXAMPLE.read_bytes()))])
    runs = r.json()["runs"]
    assert len(runs) == 2 and runs[0]["filename"] == "pattern" and runs[1]["status"] == "done"


@pytest.mark.parametrize("run_id", [2 ** 63, 2 ** 64 + 5, 0, -1])
def test_a_run_id_beyond_a_database_integer_is_404(client, run_id):
    _register(client)
    assert client.get(f"/api/runs/{run_id}").status_code == 404
    assert client.get(f"/api/runs/{run_id}/file").status_code == 404
    assert client.get(f"/runs/{run_id}").status_code == 404
