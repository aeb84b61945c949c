"""Per-request plumbing: the browser's session-id cookie, security headers, an access log
that never writes a sign-in token."""

from __future__ import annotations

import logging
import re
import time

from starlette.datastructures import MutableHeaders
from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailgate.web import sessions
from mailgate.web.context import portal
from mailgate.web.pages import security_headers

access_log = logging.getLogger("mailgate.web.access")
_TOKEN_PATH = re.compile(r"^/sign-in/[^/]+")


def redact(path: str) -> str:
    """The path as logged: the token of a sign-in link replaced."""
    return _TOKEN_PATH.sub("/sign-in/[token]", path)


def session_cookie(name: str, value: str, *, secure: bool, max_age: int | None = None) -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Path=/, Secure on https."""
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def with_session(
    request: Request, response: Response, sid: str, *, signed_in: bool = True
) -> Response:
    """``response`` setting a new session id: one at every sign-in and sign-out, so an id
    planted in a browser before sign-in is worthless after it."""
    p = portal(request)
    max_age = p.settings.web.session_hours * 3600 if signed_in else None
    cookie = session_cookie(
        p.settings.web.cookie_name, sid, secure=p.secure_cookies, max_age=max_age
    )
    response.headers.append("set-cookie", cookie)
    return response


class PortalMiddleware:
    """Gives every browser a session id (anonymous until sign-in) for CSRF tokens."""

    def __init__(self, app: ASGIApp, *, cookie_name: str, secure: bool, https: bool) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.secure = secure
        self.headers = security_headers(https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        raw = dict(scope["headers"]).get(b"cookie", b"").decode("latin-1")
        sid = cookie_parser(raw).get(self.cookie_name, "")
        issue = False
        # The API authenticates by bearer token only: no cookie, so no CSRF to defend.
        if not path.startswith("/api/") and not sessions.well_formed(sid):
            sid, issue = sessions.new_sid(), True
        scope.setdefault("state", {})["sid"] = sid if sessions.well_formed(sid) else ""
        status = 500
        started = time.monotonic()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for key, value in self.headers.items():
                    if key not in headers:
                        headers[key] = value
                already = any(
                    v.startswith(f"{self.cookie_name}=") for v in headers.getlist("set-cookie")
                )
                if issue and not already:
                    headers.append(
                        "set-cookie", session_cookie(self.cookie_name, sid, secure=self.secure)
                    )
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            access_log.info(
                "%s %s %s %.0fms",
                scope["method"],
                redact(path),
                status,
                (time.monotonic() - started) * 1000,
            )
