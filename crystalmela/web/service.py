"""What the pages and the API do, once: accounts, submitting patterns, reading a user's runs."""
from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.web.db import Run, User, utcnow

_hasher = PasswordHasher()
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


class ServiceError(CrystalmelaError):
    """A refused request, with the HTTP status the API answers it with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------- accounts

def register(db: Session, email: str, password: str) -> User:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise ServiceError(f"{email!r} is not an e-mail address", 422)
    if len(password or "") < MIN_PASSWORD:
        raise ServiceError(f"the password needs at least {MIN_PASSWORD} characters", 422)
    if db.scalar(select(User).where(User.email == email)) is not None:
        raise ServiceError(f"{email} is already registered", 409)
    user = User(email=email, password_hash=_hasher.hash(password))
    db.add(user)
    db.commit()
    return user


def authenticate(db: Session, email: str, password: str) -> User:
    user = db.scalar(select(User).where(User.email == (email or "").strip().lower()))
    try:
        if user is None:
            raise VerifyMismatchError
        _hasher.verify(user.password_hash, password or "")
    except (VerifyMismatchError, InvalidHashError):
        raise ServiceError("wrong e-mail or password", 401) from None
    return user


# ------------------------------------------------------------------------------------ predicting

@dataclass
class Upload:
    filename: str
    data: bytes


def safe_name(name: str) -> str:
    """The file's base name with anything but letters, digits, '.', '-', '_' replaced (the
    extension stays: readers use it)."""
    base = Path(name or "pattern").name or "pattern"
    return re.sub(r"[^A-Za-z0-9._-]", "_", base)[:200] or "pattern"


def submit(db: Session, user: User, uploads: list[Upload], *, models: list[str] | None, dataset: str,
           upload_dir: Path, registry=None) -> list[Run]:
    """One run per file: recorded (status ``running``, file kept) before the prediction starts,
    completed after it. A file that cannot be read becomes a ``failed`` run with the reader's message."""
    from crystalmela.pipeline.predictor import Predictor
    predictor = Predictor(models, dataset, registry=registry)     # a wrong model or data set fails first
    names = predictor.models
    runs = []
    for up in uploads:
        path = upload_dir / str(user.id) / uuid.uuid4().hex / safe_name(up.filename)
        run = Run(user_id=user.id, status="running", filename=safe_name(up.filename),
                  stored_path=str(path), size_bytes=len(up.data), sha256=hashlib.sha256(up.data).hexdigest(),
                  dataset=dataset, models=names, started=utcnow())
        db.add(run)
        db.commit()             # the row first: a crash can leave a row without its file, never a lost file
        try:
            path.parent.mkdir(parents=True)
            path.write_bytes(up.data)
        except OSError as exc:
            run.status, run.error, run.finished = "failed", f"the upload could not be stored: {exc.strerror}", utcnow()
            db.commit()
            runs.append(run)
            continue
        try:
            pattern = predictor.read(path)
            pattern.source = up.filename
            pred = predictor.predict_pattern(pattern)
            out = pred.to_json() | {"notes": pred.notes, "reader": pred.reader,
                                    "x": pattern.x.tolist(), "y": pattern.y.tolist()}
            run.result, run.status = out, ("done" if pred.ok else "failed")
            if pred.ok:
                run.top1, run.p1 = pred.top1, pred.ensemble[pred.top1]
                run.top2, run.p2 = pred.top2, pred.ensemble[pred.top2]
            else:
                run.error = "; ".join(f"{k}: {v}" for k, v in pred.errors.items()) or "no model answered"
        except CrystalmelaError as exc:
            run.status, run.error = "failed", str(exc).replace(str(path), up.filename)
        run.finished = utcnow()
        db.commit()
        runs.append(run)
    return runs


INTERRUPTED = "the service stopped while this pattern was being predicted; upload it again"


def mark_interrupted(db: Session) -> int:
    """At start-up: runs a crash left ``running`` become ``interrupted`` (their files are kept), so
    none stays running for ever. Returns how many. With several server processes sharing one
    database, call it only from the one that starts first."""
    runs = list(db.scalars(select(Run).where(Run.status == "running")))
    for run in runs:
        run.status, run.error, run.finished = "interrupted", INTERRUPTED, utcnow()
    db.commit()
    return len(runs)


def user_runs(db: Session, user: User) -> list[Run]:
    return list(db.scalars(select(Run).where(Run.user_id == user.id).order_by(Run.id.desc())))


def user_run(db: Session, user: User, run_id: int) -> Run:
    """The run if it is this user's; otherwise 404 (not 403: another user's run ids are not told)."""
    run = db.get(Run, run_id)
    if run is None or run.user_id != user.id:
        raise ServiceError(f"no run {run_id}", 404)
    return run


def run_summary(run: Run) -> dict:
    return {"id": run.id, "status": run.status, "filename": run.filename, "dataset": run.dataset,
            "models": run.models, "started": run.started.isoformat() if run.started else None,
            "finished": run.finished.isoformat() if run.finished else None,
            "top1": run.top1, "p1": run.p1, "top2": run.top2, "p2": run.p2, "error": run.error}
