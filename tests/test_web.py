"""The web service's JSON API: accounts, CSRF, uploads good and bad, runs kept and private."""
from __future__ import annotations

import os
import sqlite3
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from crystalmela.web.app import create_app
from crystalmela.web.settings import WebSettings

EXAMPLE = Path(__file__).parent.parent / "examples" / "LiCoO2.RAW"


@pytest.fixture
def settings(tmp_path):
    return WebSettings(data_dir=tmp_path / "web", max_upload_mb=1.0, max_files=3)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


def _register(client, email="ana@lab.org", password="correct horse"):
    r = client.post("/api/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


def _upload(client, headers, *files, **form):
    return client.post("/api/predict", headers=headers, data=form,
                       files=[("files", (name, data)) for name, data in files])


def test_register_upload_and_history(client, settings):
    h = _register(client)
    r = _upload(client, h, ("LiCoO2.RAW", EXAMPLE.read_bytes()), ("copy.RAW", EXAMPLE.read_bytes()),
                models="random_forest,extra_trees", dataset="inorganic")
    assert r.status_code == 200, r.text
    runs = r.json()["runs"]
    assert [x["status"] for x in runs] == ["done", "done"]
    assert runs[0]["models"] == ["random_forest", "extra_trees"] and runs[0]["dataset"] == "inorganic"
    assert runs[0]["top1"] and 0 < runs[0]["p1"] <= 1 and runs[0]["finished"] >= runs[0]["started"]
    history = client.get("/api/runs").json()["runs"]
    assert [x["id"] for x in history] == [runs[1]["id"], runs[0]["id"]]
    detail = client.get(f"/api/runs/{runs[0]['id']}").json()
    assert set(detail["result"]["per_model"]) == {"random_forest", "extra_trees"}
    said = detail["result"]["evidence"]                # the peaks their features were read from
    assert set(said) == {"random_forest", "extra_trees"} and said["random_forest"][0].startswith("529 local maxima")
    assert detail["result"]["evidence_data"]["random_forest"]["maxima"] == 529          # and as data
    assert len(detail["result"]["x"]) == len(detail["result"]["y"]) > 100
    assert client.get(f"/api/runs/{runs[0]['id']}/file").content == EXAMPLE.read_bytes()


@pytest.mark.parametrize("files, status, message", [
    ([("junk.xy", b"10 5\n10.02 abc\n")], 422, "junk.xy"),
    ([("empty.xy", b"")], 422, "empty"),
    ([("big.xy", b"1 2\n" * 400_000)], 413, "1 MB limit"),
    ([("a.xy", b"1 2\n")] * 4, 413, "at most 3"),
])
def test_bad_uploads_get_4xx_with_a_reason(client, files, status, message):
    h = _register(client)
    r = _upload(client, h, *files)
    assert r.status_code == status and message in r.text


def test_a_malformed_file_is_kept_as_a_failed_run(client):
    h = _register(client)
    r = _upload(client, h, ("junk.xy", b"10 5\n10.02 abc\n"))
    run = r.json()["runs"][0]
    assert run["status"] == "failed" and "junk.xy" in run["error"] and "/" not in run["error"].split(":")[0]
    assert client.get("/api/runs").json()["runs"][0]["id"] == run["id"]


@pytest.mark.parametrize("form, message", [({"models": "nope"}, "nope"), ({"dataset": "metals"}, "metals")])
def test_bad_model_or_dataset(client, form, message):
    h = _register(client)
    r = _upload(client, h, ("LiCoO2.RAW", EXAMPLE.read_bytes()), **form)
    assert 400 <= r.status_code < 500 and message in r.text


def test_csrf_and_login_required(client):
    assert client.get("/api/runs").status_code == 401
    h = _register(client)
    assert _upload(client, {}, ("LiCoO2.RAW", EXAMPLE.read_bytes())).status_code == 403
    assert _upload(client, {"X-CSRF-Token": "forged"}, ("LiCoO2.RAW", EXAMPLE.read_bytes())).status_code == 403
    assert client.post("/api/logout", headers=h).status_code == 200
    assert client.get("/api/runs").status_code == 401


def test_a_user_sees_only_their_own_runs(settings):
    app = create_app(settings)
    with TestClient(app) as ana, TestClient(app) as bob:
        h = _register(ana)
        run_id = _upload(ana, h, ("LiCoO2.RAW", EXAMPLE.read_bytes())).json()["runs"][0]["id"]
        _register(bob, "bob@lab.org")
        assert bob.get("/api/runs").json()["runs"] == []
        assert bob.get(f"/api/runs/{run_id}").status_code == 404
        assert bob.get(f"/api/runs/{run_id}/file").status_code == 404


@pytest.mark.parametrize("body, status, message", [
    ({"email": "not-an-address", "password": "long enough"}, 422, "not an e-mail"),
    ({"email": "x@y.org", "password": "short"}, 422, "at least 10"),
])
def test_bad_registrations(client, body, status, message):
    r = client.post("/api/register", json=body)
    assert r.status_code == status and message in r.text


def test_login_and_duplicate_account(client):
    _register(client)
    assert client.post("/api/register", json={"email": "ANA@lab.org", "password": "whatever it takes"}).status_code == 409
    assert client.post("/api/login", json={"email": "ana@lab.org", "password": "wrong pass"}).status_code == 401
    r = client.post("/api/login", json={"email": "ana@lab.org", "password": "correct horse"})
    assert r.status_code == 200 and r.json()["csrf_token"]


def test_history_survives_a_restart_and_passwords_are_hashed(settings):
    with TestClient(create_app(settings)) as c:
        h = _register(c)
        _upload(c, h, ("LiCoO2.RAW", EXAMPLE.read_bytes()))
    with TestClient(create_app(settings)) as c:      # a new process would do the same: migrate, reuse
        c.post("/api/login", json={"email": "ana@lab.org", "password": "correct horse"})
        assert len(c.get("/api/runs").json()["runs"]) == 1
    con = sqlite3.connect(settings.data_dir / "crystalmela.db")
    (stored,) = con.execute("select password_hash from users").fetchone()
    assert stored.startswith("$argon2") and "correct horse" not in stored


def test_runs_a_crash_left_running_are_interrupted_at_start_up_with_their_files_kept(settings):
    """A SIGKILL mid-prediction leaves a ``running`` row (written before the file): the next start
    marks it ``interrupted`` with the reason, and its file is still served."""
    with TestClient(create_app(settings)) as c:
        h = _register(c)
        assert _upload(c, h, ("LiCoO2.RAW", EXAMPLE.read_bytes())).status_code == 200
    con = sqlite3.connect(settings.data_dir / "crystalmela.db")
    con.execute("update runs set status = 'running', finished = null, top1 = null")   # as a kill leaves it
    con.commit()
    with TestClient(create_app(settings)) as c:
        c.post("/api/login", json={"email": "ana@lab.org", "password": "correct horse"})
        (run,) = c.get("/api/runs").json()["runs"]
        assert run["status"] == "interrupted" and "run it again from the history page" in run["error"]
        assert run["finished"] and c.get(f"/api/runs/{run['id']}/file").content == EXAMPLE.read_bytes()
        history = c.get("/history").text
        assert "interrupted" in history and f'action="/runs/{run["id"]}/rerun"' in history
        csrf = {"X-CSRF-Token": c.post("/api/login", json={"email": "ana@lab.org", "password": "correct horse"})
                .json()["csrf_token"]}
        again = c.post(f"/api/runs/{run['id']}/rerun", headers=csrf)
        assert again.status_code == 200 and again.json()["status"] == "done" and again.json()["id"] != run["id"]
        assert c.post(f"/api/runs/{again.json()['id']}/rerun", headers=csrf).status_code == 409   # done: not again
        assert c.post(f"/api/runs/{run['id']}/rerun").status_code == 403                          # CSRF as ever
        assert [r["status"] for r in c.get("/api/runs").json()["runs"]] == ["done", "interrupted"]


def test_stored_files_no_run_names_are_moved_aside_at_start_up(settings):
    """Versions before the row-first order could leave a file without a row; start-up moves it to
    uploads/orphans/ (kept), so every stored file has a row."""
    with TestClient(create_app(settings)) as c:
        h = _register(c)
        assert _upload(c, h, ("LiCoO2.RAW", EXAMPLE.read_bytes())).status_code == 200
    stray = settings.data_dir / "uploads" / "1" / "deadbeef" / "lost.xy"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"10 1\n")
    with TestClient(create_app(settings)) as c:
        c.post("/api/login", json={"email": "ana@lab.org", "password": "correct horse"})
        (run,) = c.get("/api/runs").json()["runs"]
        assert c.get(f"/api/runs/{run['id']}/file").content == EXAMPLE.read_bytes()
    assert not stray.exists() and not stray.parent.exists()
    assert (settings.data_dir / "uploads" / "orphans" / "1-deadbeef-lost.xy").read_bytes() == b"10 1\n"


def test_an_upload_that_cannot_be_stored_is_a_failed_run_not_a_lost_one(client, settings, monkeypatch):
    """The row is committed before the file is written; a write that fails marks the run failed."""
    h = _register(client)
    real = Path.write_bytes

    def full_disk(self, data):
        if "uploads" in self.parts:
            raise OSError(28, "No space left on device")
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", full_disk)
    r = _upload(client, h, ("LiCoO2.RAW", EXAMPLE.read_bytes()))
    (run,) = r.json()["runs"]
    assert r.status_code == 422 and run["status"] == "failed"
    assert run["error"] == "the upload could not be stored: No space left on device"
    assert client.get("/api/runs").json()["runs"][0]["id"] == run["id"]


def test_models_and_openapi(client):
    m = client.get("/api/models").json()
    assert {x["name"] for x in m["models"]} >= {"cnn_flax", "random_forest", "extra_trees"}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/predict", "/api/runs", "/api/runs/{run_id}"} <= set(paths)


def test_models_page_and_api_show_the_cards(client, toy):
    """What each model was trained on and how it scored, and which fail; for logged-in users (a
    model that fails to load is named with its path on the server)."""
    assert client.get("/api/models/installed").status_code == 401
    r = client.get("/models", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    _register(client)
    inv = client.get("/api/models/installed").json()
    rows = {(m["model"], m["dataset"]): m for m in inv["models"]}
    assert rows[("lattice_fit", "full")]["trained_on"].startswith("exact-20k (20,000 synthetic crystals")
    assert rows[("toy_broken", "full")]["problem"] == "failed: RuntimeError: weights corrupted"
    page = client.get("/models")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/models">Models</a>' in html
    full = html[html.index('id="models-full"'):html.index('id="models-organic"')]
    lf = rows[("lattice_fit", "full")]
    assert f"{lf['val']['top1']:.3f} / {lf['val']['top2']:.3f}" in full and "15,999" in full
    assert "not available: failed: RuntimeError: weights corrupted" in full
    assert "no model card" in full                                   # toy_a
    # toy models loaded beside the shipped ones: no fit for exactly that set
    assert "equal weights (no fit for exactly these models)" in full
    assert "/api/models/installed" in client.get("/openapi.json").json()["paths"]


def test_crystalmela_serve_answers_on_localhost(tmp_path):
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "crystalmela", "serve", "--port", str(port),
                             "--data-dir", str(tmp_path / "d")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=1) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.2)
        else:
            proc.terminate()
            pytest.fail("crystalmela serve did not answer: " + proc.communicate(timeout=10)[0].decode(errors="replace"))
        assert "random_forest" in {m["name"] for m in body["models"]}
        assert (tmp_path / "d" / "crystalmela.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ----------------------------------------------------------------------------------------- pages

def _token(html: str) -> str:
    import re
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _page_register(client, email="ana@lab.org"):
    r = client.post("/register", data={"email": email, "password": "correct horse",
                                       "csrf_token": _token(client.get("/register").text)})
    assert r.status_code == 200 and r.url.path == "/"
    return _token(r.text)


def test_pages_upload_results_history(client):
    assert client.get("/").url.path == "/login"                 # home needs an account
    tok = _page_register(client)
    home = client.get("/").text
    assert 'value="cnn_flax"' in home and 'value="organic"' in home
    r = client.post("/predict", data={"csrf_token": tok, "models": ["random_forest", "cnn_flax", "lattice_fit"]},
                    files=[("files", ("LiCoO2.RAW", EXAMPLE.read_bytes()))])
    assert r.status_code == 200 and 'src="/static/plotly.min.js"' in r.text
    assert 'id="pattern-1"' in r.text and 'id="probs-1"' in r.text and "Top-1:" in r.text
    # what lattice_fit's answer rests on: the rhombohedral cell of LiCoO2 (a 2.816, c 14.05 Å)
    assert "<b>lattice_fit</b>: cells that index the first 14 peaks" in r.text
    assert "hR rhombohedral  a 2.816" in r.text and "c 14.05" in r.text
    history = client.get("/history").text
    assert "LiCoO2.RAW" in history and 'href="/runs/1"' in history and "random_forest, cnn_flax" in history
    assert client.get("/runs/1").status_code == 200
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000


def test_a_run_stored_before_evidence_existed_still_shows(client, settings):
    tok = _page_register(client)
    client.post("/predict", data={"csrf_token": tok, "models": ["lattice_fit"]},
                files=[("files", ("LiCoO2.RAW", EXAMPLE.read_bytes()))])
    con = sqlite3.connect(settings.data_dir / "crystalmela.db")
    with con:
        con.execute("update runs set result = json_remove(result, '$.evidence')")
    con.close()
    page = client.get("/runs/1")
    assert page.status_code == 200 and "Top-1:" in page.text and "cells that index" not in page.text


def test_results_page_draws_the_cells_as_a_table(client, settings):
    tok = _page_register(client)
    r = client.post("/predict", data={"csrf_token": tok, "models": ["lattice_fit", "random_forest"]},
                    files=[("files", ("LiCoO2.RAW", EXAMPLE.read_bytes()))])
    assert r.status_code == 200
    lattice = r.text[r.text.index('data-model="lattice_fit"'):r.text.index('data-model="random_forest"')]
    head = lattice[lattice.index("<tr>"):lattice.index("</tr>")]
    assert "<th>family</th>" in head and "<th>de wolff m</th>" in head and "<th>indexes</th>" in head
    first = lattice[lattice.index("</tr>"):].split("</tr>")[1]
    assert "<td>hR</td>" in first and "<td>2.81608</td>" in first and "<td>yes</td>" in first
    assert "<summary>as text</summary>" in lattice                   # the lines, folded
    forest = r.text[r.text.index('data-model="random_forest"'):]
    assert 'class="evidence-table"' not in forest and "<pre>" in forest       # no list of cells: the lines
    # a run stored before evidence_data existed shows its lines as before
    con = sqlite3.connect(settings.data_dir / "crystalmela.db")
    with con:
        con.execute("update runs set result = json_remove(result, '$.evidence_data')")
    con.close()
    page = client.get("/runs/1").text
    assert 'class="evidence-table"' not in page and "cells that index" in page and "<pre>hR" in page


@pytest.mark.parametrize("data, tables", [
    (None, []), ([1, 2], []), ({"maxima": 529, "first_two_theta": [16.0, 16.1]}, []),
    ({"cells": []}, []),
    ({"cells": [{"a": {"nested": 1}}]}, []),                          # not flat: left to the lines
    ({"cells": [{"family": "oP", "a": 3.1, "ok": True}, {"family": "aP", "extra_key": None, "ok": False}]},
     [{"name": "cells", "columns": ["family", "a", "ok", "extra key"],
       "rows": [["oP", 3.1, "yes", ""], ["aP", "", "no", ""]]}]),
])
def test_evidence_tables(data, tables):
    from crystalmela.web.app import evidence_tables
    assert evidence_tables(data) == tables


def test_pages_refuse_bad_input_with_a_message(client):
    tok = _page_register(client)
    r = client.post("/predict", data={"csrf_token": tok}, files=[("files", ("junk.xy", b"10 5\n10.02 x\n"))])
    assert r.status_code == 422 and "Not predicted" in r.text and "junk.xy" in r.text
    r = client.post("/predict", data={"csrf_token": tok}, files=[("files", ("big.xy", b"1 2\n" * 400_000))])
    assert r.status_code == 413 and "1 MB limit" in r.text
    r = client.post("/predict", data={"csrf_token": "forged"}, files=[("files", ("a.xy", b"1 2\n"))])
    assert r.status_code == 403 and "form expired" in r.text
    r = client.post("/login", data={"email": "ana@lab.org", "password": "nope nope", "csrf_token": tok})
    assert r.status_code == 401 and "wrong e-mail or password" in r.text


def test_pages_keep_users_apart(settings):
    app = create_app(settings)
    with TestClient(app) as ana, TestClient(app) as bob:
        tok = _page_register(ana)
        ana.post("/predict", data={"csrf_token": tok}, files=[("files", ("LiCoO2.RAW", EXAMPLE.read_bytes()))])
        _page_register(bob, "bob@lab.org")
        assert bob.get("/runs/1").status_code == 404
        assert "LiCoO2.RAW" not in bob.get("/history").text
        assert bob.get("/runs/1/file").status_code == 404


def test_openapi_lists_the_api_only(client):
    paths = set(client.get("/openapi.json").json()["paths"])
    assert paths and all(p.startswith("/api/") for p in paths)


def test_a_run_is_recorded_before_the_prediction_starts(client, settings, monkeypatch):
    """If the process dies mid-prediction, the upload and its run row are already on disk."""
    h = _register(client)

    def crash(*a, **k):
        raise RuntimeError("power cut")
    from crystalmela.pipeline.predictor import Predictor
    monkeypatch.setattr(Predictor, "predict_pattern", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        _upload(client, h, ("LiCoO2.RAW", EXAMPLE.read_bytes()))
    con = sqlite3.connect(settings.data_dir / "crystalmela.db")
    status, stored = con.execute("select status, stored_path from runs").fetchone()
    assert status == "running" and Path(stored).read_bytes() == EXAMPLE.read_bytes()


@pytest.fixture
def pg_settings(tmp_path):
    """A fresh database on the PostgreSQL server ``.ci/postgres.sh`` started (its URL in
    CRYSTALMELA_TEST_POSTGRES); skipped where none could be started."""
    url = os.environ.get("CRYSTALMELA_TEST_POSTGRES")
    if not url:
        pytest.skip("no PostgreSQL server (CRYSTALMELA_TEST_POSTGRES unset; .ci/run starts one)")
    import uuid

    import sqlalchemy as sa
    name = f"crystalmela_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield WebSettings(data_dir=tmp_path / "web", database_url=url.rsplit("/", 1)[0] + "/" + name)
    with admin.connect() as con:
        con.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_postgres_backend(pg_settings):
    app = create_app(pg_settings)
    with TestClient(app) as ana, TestClient(app) as bob:
        h = _register(ana)
        r = _upload(ana, h, ("LiCoO2.RAW", EXAMPLE.read_bytes()), ("junk.xy", b"10 5\n10.02 x\n"))
        assert r.status_code == 422 and [x["status"] for x in r.json()["runs"]] == ["done", "failed"]
        _register(bob, "bob@lab.org")
        assert bob.get(f"/api/runs/{r.json()['runs'][0]['id']}").status_code == 404
    with TestClient(create_app(pg_settings)) as again:       # migrations re-run on a live schema
        again.post("/api/login", json={"email": "ana@lab.org", "password": "correct horse"})
        runs = again.get("/api/runs").json()["runs"]
        assert len(runs) == 2 and runs[1]["top1"] and runs[0]["error"]
    assert not (pg_settings.data_dir / "crystalmela.db").exists()


@pytest.mark.parametrize("port", ["-3", "70000", "http"])
def test_serve_refuses_a_port_that_cannot_be(port, capsys):
    """Checked by the CLI before the server starts: uvicorn's own message for it is a socket error."""
    from crystalmela.cli.main import main
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--port", port])
    assert exit_.value.code == 2
    assert f"expected a TCP port 0–65535, got {port!r}" in capsys.readouterr().err


@pytest.mark.parametrize("args, env, message", [
    (["--max-upload-mb", "-1"], {}, "--max-upload-mb or CRYSTALMELA_MAX_UPLOAD_MB: Input should be greater than 0 (got -1.0)"),
    ([], {"CRYSTALMELA_MAX_UPLOAD_MB": "abc"}, "--max-upload-mb or CRYSTALMELA_MAX_UPLOAD_MB: Input should be a valid number"),
    ([], {"CRYSTALMELA_SECURE_COOKIES": "maybe"}, "CRYSTALMELA_SECURE_COOKIES: Input should be a valid boolean"),
])
def test_serve_names_the_setting_that_is_wrong(args, env, message, capsys, monkeypatch, tmp_path):
    """A bad option or environment variable is refused before the server starts, naming both ways
    to set it: not an 'internal error'."""
    from crystalmela.cli.main import main
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["serve", "--data-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "internal error" not in err
