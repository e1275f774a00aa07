"""What the pages and the API do, once: accounts, submitting patterns, reading a user's runs."""
from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from crystalmela.plugin_api.errors import CrystalmelaError
from crystalmela.web.db import LoginSession, Run, User, utcnow

_hasher = PasswordHasher()
# verified against when the e-mail is unknown, so a wrong address costs the same time as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD = 10
MAX_PASSWORD = 128
MIN_STRENGTH = 2            # zxcvbn's 0–4 scale; 0–1 are its "too guessable" / "very guessable"
PASSWORD_RULES = (f"{MIN_PASSWORD}–{MAX_PASSWORD} characters, not a common password, a word with digits "
                  "tacked on, a keyboard run or your e-mail address")


class ServiceError(CrystalmelaError):
    """A refused request, with the HTTP status the API answers it with (and, for 429, when to retry)."""

    def __init__(self, message: str, status: int = 400, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


# ------------------------------------------------------------------------------------- accounts

def check_email(email: str) -> str:
    """The address, normalised (``email-validator``: syntax, and no control or bidirectional
    characters such as NUL or U+202E that would make one address look like another)."""
    from email_validator import EmailNotValidError, validate_email
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ServiceError(f"not an e-mail address: {exc}", 422) from None


def check_password(password: str, email: str = "") -> None:
    """Length first (a 100,000-character password is refused before anything hashes it), then
    zxcvbn's guessability, which knows the common-password lists and the usual patterns."""
    password = password or ""
    if len(password) < MIN_PASSWORD:
        raise ServiceError(f"the password needs at least {MIN_PASSWORD} characters", 422)
    if len(password) > MAX_PASSWORD:
        raise ServiceError(f"the password may have at most {MAX_PASSWORD} characters", 422)
    from zxcvbn import zxcvbn
    verdict = zxcvbn(password, user_inputs=[email, *email.replace("@", ".").split(".")] if email else [])
    if verdict["score"] < MIN_STRENGTH:
        hint = verdict["feedback"].get("warning") or "it is too easy to guess"
        raise ServiceError(f"choose another password: {hint.rstrip('.').lower()}", 422)


def register(db: Session, email: str, password: str) -> User:
    email = check_email(email)
    check_password(password, email)
    if db.scalar(select(User).where(User.email == email)) is not None:
        # Without e-mail verification this has to tell; the register form is rate-limited per client
        raise ServiceError(f"{email} is already registered", 409)
    user = User(email=email, password_hash=_hasher.hash(password))
    db.add(user)
    db.commit()
    return user


def authenticate(db: Session, email: str, password: str) -> User:
    user = db.scalar(select(User).where(User.email == (email or "").strip().lower()))
    password = (password or "")[:MAX_PASSWORD * 8]    # never hash megabytes
    try:
        if user is None:
            _hasher.verify(_DUMMY_HASH, password)     # the same work as for a known address
            raise VerifyMismatchError
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        raise ServiceError("wrong e-mail or password", 401) from None
    return user


class LoginThrottle:
    """Failed log-ins counted per account and per client over a sliding window; past the limit both
    are refused (429, with when to retry) until old failures age out, even with the right password.

    Kept in memory: one server process (the documented deployment). With several processes each
    counts alone, so the limits multiply by their number."""

    def __init__(self, per_account: int = 5, per_client: int = 20, window_s: float = 900.0, clock=time.monotonic):
        self.per_account, self.per_client, self.window_s, self.clock = per_account, per_client, window_s, clock
        self._fails: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque:
        q = self._fails.setdefault(key, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def check(self, email: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            for key, limit in ((f"a:{(email or '').strip().lower()}", self.per_account), (f"c:{client}", self.per_client)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    wait = int(q[0] + self.window_s - now) + 1
                    raise ServiceError(f"too many failed attempts; try again in {wait} s", 429, retry_after=wait)

    def failed(self, email: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (f"a:{(email or '').strip().lower()}", f"c:{client}"):
                self._recent(key, now).append(now)
            if len(self._fails) > 100_000:           # bounded memory under a spray of addresses
                for key in [k for k, q in self._fails.items() if not q]:
                    del self._fails[key]

    def attempt(self, act, email: str, client: str):
        """``act()`` (a log-in or a registration) unless throttled; a refusal counts as a failure."""
        self.check(email, client)
        try:
            return act()
        except ServiceError as exc:
            if exc.status in (401, 409):
                self.failed(email, client)
            raise


# ------------------------------------------------------------------------------------ sessions

def start_session(db: Session, user: User) -> str:
    """A server-side session for ``user``: the token the signed cookie carries. Logging out ends it
    here, so a copied cookie stops working too."""
    token = secrets.token_urlsafe(32)
    db.add(LoginSession(token=token, user_id=user.id, created=utcnow()))
    db.commit()
    return token


def session_user(db: Session, token: str | None) -> User | None:
    if not token or not isinstance(token, str):
        return None
    row = db.get(LoginSession, token)
    return row.user if row is not None and row.ended is None else None


def end_session(db: Session, token: str | None) -> None:
    row = db.get(LoginSession, token) if isinstance(token, str) and token else None
    if row is not None and row.ended is None:
        row.ended = utcnow()
        db.commit()


# ------------------------------------------------------------------------------------ predicting

@dataclass
class Upload:
    filename: str
    data: bytes


def safe_name(name: str) -> str:
    """The file's base name with anything but letters, digits, '.', '-', '_' replaced (the
    extension stays: readers use it)."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name or "pattern").name)[:200]
    return base if base.strip(".") else "pattern"          # "", "." and ".." name no file


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
        runs.append(_predict(db, predictor, run, path))
    return runs


def _predict(db: Session, predictor, run: Run, path: Path) -> Run:
    """Predict the stored file of a ``running`` run and complete the row."""
    try:
        pattern = predictor.read(path)
        pattern.source = run.filename
        pred = predictor.predict_pattern(pattern)
        out = pred.to_json() | {"x": pattern.x.tolist(), "y": pattern.y.tolist()}
        run.result, run.status = out, ("done" if pred.ok else "failed")
        if pred.ok:
            run.top1, run.p1 = pred.top1, pred.ensemble[pred.top1]
            run.top2, run.p2 = pred.top2, pred.ensemble[pred.top2]
        else:
            run.error = "; ".join(f"{k}: {v}" for k, v in pred.errors.items()) or "no model answered"
    except CrystalmelaError as exc:
        run.status, run.error = "failed", str(exc).replace(str(path), run.filename)
    run.finished = utcnow()
    db.commit()
    return run


RERUNNABLE = ("interrupted", "failed")


def rerun(db: Session, user: User, run_id: int, registry=None) -> Run:
    """A new run of an interrupted (or failed) run's stored file, with its models and data set; the
    file is checked against the hash recorded when it was uploaded."""
    from crystalmela.pipeline.predictor import Predictor
    old = user_run(db, user, run_id)
    if old.status not in RERUNNABLE:
        raise ServiceError(f"run {run_id} is {old.status}; only an interrupted or failed run is run again", 409)
    path = Path(old.stored_path)
    try:
        data = path.read_bytes()
    except OSError:
        raise ServiceError(f"the file of run {run_id} is no longer stored; upload it again", 410) from None
    if hashlib.sha256(data).hexdigest() != old.sha256:
        raise ServiceError(f"the stored file of run {run_id} has changed since it was uploaded; upload it again", 409)
    predictor = Predictor(old.models, old.dataset, registry=registry)
    run = Run(user_id=user.id, status="running", filename=old.filename, stored_path=old.stored_path,
              size_bytes=old.size_bytes, sha256=old.sha256, dataset=old.dataset, models=predictor.models,
              started=utcnow())
    db.add(run)
    db.commit()
    return _predict(db, predictor, run, path)


ORPHANS = "orphans"


def sweep_orphans(db: Session, upload_dir: Path) -> int:
    """At start-up: stored files no run names (left by versions that wrote the file before its row)
    are moved to ``uploads/orphans/`` — kept, never deleted — so every stored upload has a row.
    Returns how many."""
    if not upload_dir.is_dir():
        return 0
    known = {str(Path(p)) for p in db.scalars(select(Run.stored_path))}
    moved = 0
    for f in upload_dir.glob("*/*/*"):
        if f.parts[-3] == ORPHANS or not f.is_file() or str(f) in known:
            continue
        target = upload_dir / ORPHANS / f"{f.parts[-3]}-{f.parts[-2]}-{f.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(f), target)
        try:
            f.parent.rmdir()
        except OSError:
            pass
        moved += 1
    return moved


INTERRUPTED = "the service stopped while this pattern was being predicted; run it again from the history page"


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
    run = db.get(Run, run_id) if 0 < run_id < 2 ** 63 else None     # beyond a database integer: no such run
    if run is None or run.user_id != user.id:
        raise ServiceError(f"no run {run_id}", 404)
    return run


def run_summary(run: Run) -> dict:
    return {"id": run.id, "status": run.status, "filename": run.filename, "dataset": run.dataset,
            "models": run.models, "started": run.started.isoformat() if run.started else None,
            "finished": run.finished.isoformat() if run.finished else None,
            "top1": run.top1, "p1": run.p1, "top2": run.top2, "p2": run.p2, "error": run.error}
