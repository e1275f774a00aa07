"""ASGI middleware that guards every request: a body-size limit enforced while the body streams in,
and the security headers on every response.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``: the limit has to sit between the socket and
the multipart parser (which spools to a temporary file), and a BaseHTTPMiddleware only sees the
request after the route has started reading it.
"""
from __future__ import annotations

import json
import secrets

from starlette.exceptions import HTTPException

__all__ = ["BodyLimit", "BodyTooLarge", "SecurityHeaders", "csp"]

SMALL_BODY = 64 * 1024      # a login form, a JSON body: far more than either needs


class BodyTooLarge(HTTPException):
    """Raised from inside ``receive``; an HTTPException so FastAPI's body parser passes it on as it is
    (any other exception there becomes "400 error parsing the body")."""

    def __init__(self, limit: int, why: str):
        super().__init__(413, f"request body over {limit / 1e6:.3g} MB ({why})")


class BodyLimit:
    """Refuse a request whose body is over its limit: at once when its Content-Length says so, else
    as soon as the bytes received pass it, before any of it is spooled or parsed.

    Upload paths get ``upload_limit`` bytes when the (signed) session names a login, every other
    request ``SMALL_BODY``: an anonymous 1 GB POST is answered after its first 64 KB."""

    def __init__(self, app, upload_paths: tuple[str, ...], upload_limit: int):
        self.app, self.upload_paths, self.upload_limit = app, upload_paths, upload_limit

    def _limit(self, scope) -> tuple[int, str]:
        upload = scope.get("path", "") in self.upload_paths
        if upload and (scope.get("session") or {}).get("sid"):
            return self.upload_limit, "the upload limit"
        if upload:
            return SMALL_BODY, "log in to upload files"
        return SMALL_BODY, "no request here carries more"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit, why = self._limit(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _refuse(send, BodyTooLarge(limit, why))
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit, why)
            return message

        started = False

        async def tracking(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except BodyTooLarge as exc:     # raised outside a route (a middleware reading the body)
            if not started:
                await _refuse(send, exc)


async def _refuse(send, exc: BodyTooLarge) -> None:
    body = json.dumps({"detail": exc.detail}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *_HEADERS]})
    await send({"type": "http.response.body", "body": body})


_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"), (b"cross-origin-opener-policy", b"same-origin")]


def csp(nonce: str, *, docs: bool = False) -> str:
    """Scripts only from this server and inline ones carrying the response's nonce (the results
    page's plot); styles inline allowed (the pages' own and Plotly's). The Swagger UI page builds
    itself with an inline script FastAPI writes, so it alone allows inline scripts."""
    script = "'self' 'unsafe-inline'" if docs else f"'self' 'nonce-{nonce}'"
    return ("default-src 'self'; " f"script-src {script}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


class SecurityHeaders:
    """CSP, X-Frame-Options, nosniff, Referrer-Policy on every response; the CSP nonce is put in
    ``scope["state"]["csp_nonce"]`` for templates (``request.state.csp_nonce``)."""

    def __init__(self, app, docs_paths: tuple[str, ...] = ()):
        self.app, self.docs_paths = app, docs_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        policy = csp(nonce, docs=scope.get("path") in self.docs_paths).encode()

        async def with_headers(message):
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _HEADERS if k not in have]
                if b"content-security-policy" not in have:
                    extra.append((b"content-security-policy", policy))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
