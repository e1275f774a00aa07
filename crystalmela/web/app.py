"""The FastAPI application: JSON API under /api (OpenAPI at /openapi.json, docs at /docs).

Sessions are signed cookies (Starlette's SessionMiddleware, itsdangerous), HttpOnly, SameSite=Lax,
Secure when ``secure_cookies``. A logged-in session holds a CSRF token; every state-changing request
made with that session must echo it in ``X-CSRF-Token`` (login and register return it).
"""
from __future__ import annotations

import secrets
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from starlette.middleware.sessions import SessionMiddleware

from ..errors import CrystalmelaError
from . import service
from .db import User, make_sessionmaker, migrate
from .settings import WebSettings


class Credentials(BaseModel):
    email: str
    password: str


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.url)
    engine, Session = make_sessionmaker(settings.url)
    upload_dir = settings.data_dir / "uploads"

    @asynccontextmanager
    async def lifespan(app):
        yield
        engine.dispose()

    app = FastAPI(title="crystalmela", version=_version(), lifespan=lifespan,
                  description="Crystal system of powder diffraction patterns: upload, results, history.")
    app.add_middleware(SessionMiddleware, secret_key=settings.secret(), same_site="lax",
                       https_only=settings.secure_cookies, session_cookie="crystalmela_session")
    app.state.settings = settings

    def db():
        with Session() as s:
            yield s

    def current_user(request: Request, s=Depends(db)) -> User:
        uid = request.session.get("user_id")
        user = s.get(User, uid) if uid is not None else None
        if user is None:
            raise service.ServiceError("log in first", 401)
        return user

    def check_csrf(request: Request) -> None:
        token = request.session.get("csrf")
        if not token or not secrets.compare_digest(request.headers.get("x-csrf-token", ""), token):
            raise service.ServiceError("missing or wrong X-CSRF-Token header", 403)

    @app.exception_handler(CrystalmelaError)
    async def _refused(request: Request, exc: CrystalmelaError):
        return JSONResponse({"detail": str(exc)}, status_code=getattr(exc, "status", 422))

    def _login(request: Request, user: User) -> dict:
        request.session.clear()
        request.session["user_id"] = user.id
        request.session["csrf"] = secrets.token_urlsafe(32)
        return {"email": user.email, "csrf_token": request.session["csrf"]}

    @app.post("/api/register", status_code=201)
    def api_register(body: Credentials, request: Request, s=Depends(db)):
        return _login(request, service.register(s, body.email, body.password))

    @app.post("/api/login")
    def api_login(body: Credentials, request: Request, s=Depends(db)):
        return _login(request, service.authenticate(s, body.email, body.password))

    @app.post("/api/logout", dependencies=[Depends(check_csrf)])
    def api_logout(request: Request):
        request.session.clear()
        return {"ok": True}

    @app.get("/api/models")
    def api_models():
        from ..plugins import get_registry
        from ..systems import DATASETS
        reg = get_registry()
        return {"models": [{"name": n, "version": c.version, "description": c.description,
                            "datasets": list(c.datasets)} for n, c in sorted(reg.classifiers.items())],
                "datasets": list(DATASETS)}

    @app.post("/api/predict", dependencies=[Depends(check_csrf)])
    async def api_predict(files: list[UploadFile] = File(...), models: str | None = Form(None),
                          dataset: str = Form("full"), user: User = Depends(current_user), s=Depends(db)):
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
        names = [m.strip() for m in models.split(",") if m.strip()] if models else None
        runs = service.submit(s, user, uploads, models=names, dataset=dataset, upload_dir=upload_dir)
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
        run = service.user_run(s, user, run_id)
        return FileResponse(run.stored_path, filename=run.filename)

    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("crystalmela")
    except PackageNotFoundError:
        return "0"
