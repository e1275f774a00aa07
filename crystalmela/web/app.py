"""The FastAPI application: JSON API under /api (OpenAPI at /openapi.json, Swagger UI at /docs from
the installed ``swagger-ui-bundle``, or off with ``api_docs``).

Sessions are signed cookies (Starlette's SessionMiddleware, itsdangerous), HttpOnly, SameSite=Lax,
Secure when ``secure_cookies``, carrying the token of a server-side login session that logging out
ends. A logged-in session holds a CSRF token; every state-changing request made with that session
must echo it in ``X-CSRF-Token`` (login and register return it). Log-ins are throttled per account
and per client (``service.LoginThrottle``); request bodies are limited while they stream and every
response carries the security headers (``guards``).
"""
from __future__ import annotations

import secrets
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.web import service
from crystalmela.web.db import User, make_sessionmaker, migrate
from crystalmela.web.guards import BodyLimit, SecurityHeaders
from crystalmela.web.settings import WebSettings


def evidence_tables(data) -> list[dict]:
    """The tables the Results page draws from one model's ``evidence_data``: every value that is a
    list of flat objects (lattice_fit's ``cells``) becomes ``{"name", "columns", "rows"}``, columns
    in first-seen order, booleans as yes / no. Any plugin's data gets the same treatment, so the page
    knows no plugin; data with no such list (the forests' peak summary) gives none, and the text
    lines are shown instead."""
    if not isinstance(data, dict):
        return []
    tables = []
    for name, value in data.items():
        if not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            continue
        if any(isinstance(x, (dict, list)) for v in value for x in v.values()):
            continue
        columns = list(dict.fromkeys(k for v in value for k in v))
        rows = [["yes" if v.get(c) is True else "no" if v.get(c) is False else "" if v.get(c) is None
                 else v.get(c) for c in columns] for v in value]
        tables.append({"name": name, "columns": [c.replace("_", " ") for c in columns], "rows": rows})
    return tables


class Credentials(BaseModel):
    email: str
    password: str


def stored_file(run) -> FileResponse:
    """An upload as it was stored: a download (attachment, octet-stream, nosniff), never a page, so
    an uploaded ``evil.html`` cannot run in the site's origin."""
    if not Path(run.stored_path).is_file():
        raise service.ServiceError(f"the file of run {run.id} is no longer stored", 410)
    return FileResponse(run.stored_path, filename=run.filename, media_type="application/octet-stream",
                        headers={"X-Content-Type-Options": "nosniff"})


def login(request: Request, s, user: User) -> None:
    """Start a server-side session for ``user`` in a fresh cookie with a new CSRF token."""
    request.session.clear()
    request.session["sid"] = service.start_session(s, user)
    request.session["csrf"] = secrets.token_urlsafe(32)


def _docs(app: FastAPI) -> None:
    """Swagger UI from the installed ``swagger-ui-bundle`` (no CDN: the page works offline)."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def swagger():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="crystalmela API",
                                   swagger_js_url="/static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger/favicon-32x32.png")


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.url)
    engine, Session = make_sessionmaker(settings.url)
    upload_dir = settings.data_dir / "uploads"
    with Session() as s:
        service.mark_interrupted(s)
        service.sweep_orphans(s, upload_dir)

    @asynccontextmanager
    async def lifespan(app):
        yield
        engine.dispose()

    docs = ("/docs",) if settings.api_docs else ()
    app = FastAPI(title="crystalmela", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json" if settings.api_docs else None,
                  description="Crystal system of powder diffraction patterns: upload, results, history.")
    # the last added runs first: headers on everything, then the session, then the body limit (which
    # reads the session to tell a logged-in upload from an anonymous one)
    app.add_middleware(BodyLimit, upload_paths=("/api/predict", "/predict"),
                       upload_limit=int(settings.max_request_mb * 1024 * 1024))
    app.add_middleware(SessionMiddleware, secret_key=settings.secret(), same_site="lax",
                       https_only=settings.secure_cookies, session_cookie="crystalmela_session")
    app.add_middleware(SecurityHeaders, docs_paths=docs)
    app.state.settings = settings
    app.state.throttle = throttle = service.LoginThrottle()
    if settings.api_docs:
        _docs(app)

    def db():
        with Session() as s:
            yield s

    def current_user(request: Request, s=Depends(db)) -> User:
        user = service.session_user(s, request.session.get("sid"))
        if user is None:
            raise service.ServiceError("log in first", 401)
        return user

    def check_csrf(request: Request) -> None:
        token = request.session.get("csrf")
        if not token or not secrets.compare_digest(request.headers.get("x-csrf-token", ""), token):
            raise service.ServiceError("missing or wrong X-CSRF-Token header", 403)

    @app.exception_handler(CrystalmelaError)
    async def _refused(request: Request, exc: CrystalmelaError):
        retry = getattr(exc, "retry_after", None)
        return JSONResponse({"detail": str(exc)}, status_code=getattr(exc, "status", 422),
                            headers={"Retry-After": str(retry)} if retry else None)

    def _login(request: Request, s, user: User) -> dict:
        login(request, s, user)
        return {"email": user.email, "csrf_token": request.session["csrf"]}

    def client(request: Request) -> str:
        return request.client.host if request.client else "?"

    @app.post("/api/register", status_code=201)
    def api_register(body: Credentials, request: Request, s=Depends(db)):
        user = throttle.attempt(lambda: service.register(s, body.email, body.password), body.email, client(request))
        return _login(request, s, user)

    @app.post("/api/login")
    def api_login(body: Credentials, request: Request, s=Depends(db)):
        user = throttle.attempt(lambda: service.authenticate(s, body.email, body.password), body.email,
                                client(request))
        return _login(request, s, user)

    @app.post("/api/logout", dependencies=[Depends(check_csrf)])
    def api_logout(request: Request, s=Depends(db)):
        service.end_session(s, request.session.get("sid"))
        request.session.clear()
        return {"ok": True}

    @app.get("/api/models")
    def api_models():
        from crystalmela.plugins import get_registry
        from crystalmela.plugin_api.systems import DATASETS
        reg = get_registry()
        return {"models": [{"name": n, "version": c.version, "description": c.description,
                            "datasets": list(c.datasets)} for n, c in sorted(reg.classifiers.items())],
                "datasets": list(DATASETS)}

    @app.get("/api/models/installed")
    def api_models_installed(user: User = Depends(current_user)):
        """Every installed model as its card describes it (``crystalmela models --json``). Logged-in
        users only: a model that fails to load is named with its path on the server."""
        from crystalmela.inventory import inventory
        return inventory().model_dump()

    async def read_uploads(files: list[UploadFile]) -> list[service.Upload]:
        """The uploaded files, refused whole when too many, too large or empty (nothing recorded)."""
        files = [f for f in files if f.filename or f.size]
        if not files:
            raise service.ServiceError("no file was uploaded", 422)
        if len(files) > settings.max_files:
            raise service.ServiceError(f"{len(files)} files: at most {settings.max_files} per upload", 413)
        limit = int(settings.max_upload_mb * 1024 * 1024)
        uploads = []
        for f in files:
            data = await f.read(limit + 1)
            if len(data) > limit:
                raise service.ServiceError(f"{f.filename}: larger than the {settings.max_upload_mb:g} MB "
                                           "limit per file", 413)
            if not data:
                raise service.ServiceError(f"{f.filename}: the file is empty", 422)
            uploads.append(service.Upload(f.filename or "pattern", data))
        return uploads

    @app.post("/api/predict", dependencies=[Depends(check_csrf)])
    async def api_predict(files: list[UploadFile] = File(...), models: str | None = Form(None),
                          dataset: str = Form("full"), user: User = Depends(current_user), s=Depends(db)):
        uploads = await read_uploads(files)
        names = [m.strip() for m in models.split(",") if m.strip()] if models else None
        # predicting is CPU work: off the event loop, so other requests are served meanwhile
        runs = await run_in_threadpool(service.submit, s, user, uploads, models=names, dataset=dataset,
                                       upload_dir=upload_dir)
        body = {"runs": [service.run_summary(r) for r in runs]}
        return JSONResponse(body, status_code=200 if all(r.status == "done" for r in runs) else 422)

    @app.get("/api/runs")
    def api_runs(user: User = Depends(current_user), s=Depends(db)):
        return {"runs": [service.run_summary(r) for r in service.user_runs(s, user)]}

    @app.get("/api/runs/{run_id}")
    def api_run(run_id: int, user: User = Depends(current_user), s=Depends(db)):
        run = service.user_run(s, user, run_id)
        return service.run_summary(run) | {"result": run.result}

    @app.get("/api/runs/{run_id}/file")
    def api_run_file(run_id: int, user: User = Depends(current_user), s=Depends(db)):
        return stored_file(service.user_run(s, user, run_id))

    @app.post("/api/runs/{run_id}/rerun", dependencies=[Depends(check_csrf)])
    async def api_rerun(run_id: int, user: User = Depends(current_user), s=Depends(db)):
        run = await run_in_threadpool(service.rerun, s, user, run_id)
        return JSONResponse(service.run_summary(run), status_code=200 if run.status == "done" else 422)

    _pages(app, settings, db, read_uploads, login)
    for route in app.routes:                 # the OpenAPI document describes the API, not the pages
        if not getattr(route, "path", "/api").startswith(("/api", "/docs", "/openapi", "/redoc")):
            route.include_in_schema = False
    return app


def _pages(app: FastAPI, settings: WebSettings, db, read_uploads, login) -> None:
    """HTML pages over the same service: Home (upload), Results, History, Contact, accounts. Forms
    carry the session's CSRF token in a hidden field."""
    templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
    templates.env.globals["evidence_tables"] = evidence_tables
    templates.env.globals["password_rules"] = service.PASSWORD_RULES
    templates.env.globals["rerunnable"] = service.RERUNNABLE
    upload_dir = settings.data_dir / "uploads"
    throttle = app.state.throttle

    def user_of(request: Request, s) -> User | None:
        return service.session_user(s, request.session.get("sid"))

    def csrf(request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(32)
        return request.session["csrf"]

    def form_ok(request: Request, token: str) -> bool:
        return bool(request.session.get("csrf")) and secrets.compare_digest(token or "", request.session["csrf"])

    def render(request: Request, name: str, status: int = 200, **ctx):
        ctx.setdefault("user", None)
        return templates.TemplateResponse(request, name, {"csrf": csrf(request), "nonce": request.state.csp_nonce,
                                                          **ctx}, status_code=status)

    def home(request: Request, user: User, error: str | None = None, status: int = 200):
        from crystalmela.plugins import get_registry
        from crystalmela.plugin_api.systems import DATASETS
        reg = get_registry()
        return render(request, "home.html", status, user=user, error=error, datasets=DATASETS,
                      models=[reg.classifiers[n] for n in sorted(reg.classifiers)],
                      max_mb=f"{settings.max_upload_mb:g}")

    @app.get("/", response_class=HTMLResponse)
    def page_home(request: Request, s=Depends(db)):
        user = user_of(request, s)
        return home(request, user) if user else RedirectResponse("/login", 303)

    @app.post("/predict", response_class=HTMLResponse)
    async def page_predict(request: Request, files: list[UploadFile] = File(default=[]),
                           models: list[str] = Form(default=[]), dataset: str = Form("full"),
                           csrf_token: str = Form(""), s=Depends(db)):
        user = user_of(request, s)
        if user is None:
            return RedirectResponse("/login", 303)
        if not form_ok(request, csrf_token):
            return home(request, user, "the form expired; please submit it again", 403)
        try:
            uploads = await read_uploads(files)
            runs = await run_in_threadpool(service.submit, s, user, uploads, models=models or None,
                                           dataset=dataset, upload_dir=upload_dir)
        except CrystalmelaError as exc:
            return home(request, user, str(exc), getattr(exc, "status", 422))
        return render(request, "results.html", 200 if all(r.status == "done" for r in runs) else 422,
                      user=user, runs=runs)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def page_run(run_id: int, request: Request, s=Depends(db)):
        user = user_of(request, s)
        if user is None:
            return RedirectResponse("/login", 303)
        try:
            run = service.user_run(s, user, run_id)
        except service.ServiceError as exc:
            return render(request, "contact.html", exc.status, user=user, error=str(exc))
        return render(request, "results.html", user=user, runs=[run])

    @app.get("/runs/{run_id}/file")
    def page_run_file(run_id: int, request: Request, s=Depends(db)):
        user = user_of(request, s)
        if user is None:
            return RedirectResponse("/login", 303)
        return stored_file(service.user_run(s, user, run_id))

    @app.post("/runs/{run_id}/rerun", response_class=HTMLResponse)
    async def page_rerun(run_id: int, request: Request, csrf_token: str = Form(""), s=Depends(db)):
        user = user_of(request, s)
        if user is None:
            return RedirectResponse("/login", 303)
        if not form_ok(request, csrf_token):
            return render(request, "history.html", 403, user=user, runs=service.user_runs(s, user),
                          error="the form expired; please submit it again")
        try:
            run = await run_in_threadpool(service.rerun, s, user, run_id)
        except service.ServiceError as exc:
            return render(request, "history.html", exc.status, user=user, runs=service.user_runs(s, user),
                          error=str(exc))
        return render(request, "results.html", 200 if run.status == "done" else 422, user=user, runs=[run])

    @app.get("/history", response_class=HTMLResponse)
    def page_history(request: Request, s=Depends(db)):
        user = user_of(request, s)
        if user is None:
            return RedirectResponse("/login", 303)
        return render(request, "history.html", user=user, runs=service.user_runs(s, user))

    @app.get("/models", response_class=HTMLResponse)
    def page_models(request: Request, s=Depends(db)):
        from crystalmela.inventory import inventory
        user = user_of(request, s)
        if user is None:
            return RedirectResponse("/login", 303)
        inv = inventory()
        return render(request, "models.html", user=user, models=inv.models,
                      datasets=list(dict.fromkeys(m.dataset for m in inv.models)),
                      ensembles={e.dataset: e for e in inv.ensembles})

    @app.get("/contact", response_class=HTMLResponse)
    def page_contact(request: Request, s=Depends(db)):
        return render(request, "contact.html", user=user_of(request, s))

    def account_pages(action: str, heading: str, act) -> None:
        def show(request: Request):
            return render(request, "account.html", heading=heading, action=action)

        def submit_form(request: Request, email: str = Form(""), password: str = Form(""),
                        csrf_token: str = Form(""), s=Depends(db)):
            if not form_ok(request, csrf_token):
                return render(request, "account.html", 403, heading=heading, action=action, email=email,
                              error="the form expired; please submit it again")
            try:
                user = throttle.attempt(lambda: act(s, email, password), email,
                                        request.client.host if request.client else "?")
            except service.ServiceError as exc:
                page = render(request, "account.html", exc.status, heading=heading, action=action,
                              email=email, error=str(exc))
                if exc.retry_after:
                    page.headers["Retry-After"] = str(exc.retry_after)
                return page
            login(request, s, user)
            return RedirectResponse("/", 303)

        app.get(action, response_class=HTMLResponse)(show)
        app.post(action, response_class=HTMLResponse)(submit_form)

    account_pages("/login", "Log in", service.authenticate)
    account_pages("/register", "Register", service.register)

    @app.post("/logout")
    def page_logout(request: Request, csrf_token: str = Form(""), s=Depends(db)):
        if form_ok(request, csrf_token):
            service.end_session(s, request.session.get("sid"))
            request.session.clear()
        return RedirectResponse("/login", 303)

    @app.get("/static/plotly.min.js")
    def plotly_js():
        """Plotly from the installed package: pages work with no internet."""
        import plotly
        path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        return FileResponse(path, media_type="application/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("crystalmela")
    except PackageNotFoundError:
        return "0"
