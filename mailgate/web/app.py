"""The ASGI application: routers for customers, agents and the API; error pages; headers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from mailgate import __version__
from mailgate.core.errors import ConfigError, TemporaryFailure
from mailgate.core.settings import Settings
from mailgate.db.store import Store
from mailgate.jobs import queue_notices_after_commit
from mailgate.tickets.sign_in import safe_next
from mailgate.web import (
    agent,
    agent_actions,
    agent_involvement,
    agent_messages,
    agent_new,
    agent_todos,
    api,
    api_record,
    api_schema,
    api_todos,
    customer,
    i18n,
    ops,
    reports,
)
from mailgate.web.auth import SignInRequired
from mailgate.web.context import Portal, portal
from mailgate.web.i18n import N_
from mailgate.web.middleware import PortalMiddleware
from mailgate.web.pages import TEMPLATES, render, security_headers

log = logging.getLogger(__name__)
# The words of the error pages, translated by error.html (JSON under /api: English).
TITLES = {
    400: N_("That request was not understood"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not allowed"),
    413: N_("Too large"),
    429: N_("Too many requests"),
}


# What an error page says where Starlette raised the error with only its status phrase.
STOCK_WORDS = {
    404: N_("There is nothing at this address."),
    405: N_("This address does not take that kind of request."),
    413: N_("What was sent is larger than this portal takes."),
}


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings, store: Store, *, now: Callable[[], datetime] = utc_now
) -> FastAPI:
    """The portal and API over ``store``; needs ``security.secret`` (it signs links and forms)."""
    if len(settings.security.secret) < 16:
        raise ConfigError(
            [f"{settings.source}: security.secret: required to run the portal (mailgate init)"]
        )
    app = FastAPI(
        title="mailgate",
        version=__version__,
        description="Tickets for integrations. Authenticate with `Authorization: Bearer <token>`.",
        openapi_url="/api/openapi.json",
        # The interactive docs load scripts from a CDN: not on a portal whose CSP allows none.
        docs_url=None,
        redoc_url=None,
    )
    p = Portal(settings=settings, store=store, now=now)
    app.state.portal = p
    if settings.queue.broker != "embedded":
        # Notices the portal and the API write go to the broker as soon as they commit.
        queue_notices_after_commit(store, settings)
    app.add_middleware(
        PortalMiddleware,
        cookie_name=settings.web.cookie_name,
        secure=p.secure_cookies,
        https=settings.web.base_url.startswith("https://"),
    )
    app.include_router(customer.router)
    app.include_router(agent.router)
    app.include_router(agent_actions.router)
    app.include_router(agent_messages.router)
    app.include_router(agent_involvement.router)
    app.include_router(agent_new.router)
    app.include_router(agent_todos.router)
    app.include_router(reports.router)
    app.include_router(api.router)
    app.include_router(api_record.router)
    app.include_router(api_todos.router)
    app.include_router(ops.router)
    app.state.metrics = ops.registry_for(store, now, settings)
    api_schema.name_the_choices(app, settings, store)
    api_todos.name_the_agents(app, store)
    app.add_api_route("/static/portal.css", _stylesheet, include_in_schema=False)
    # Browsers ask for /favicon.ico whatever the page says: the same small picture.
    for path in ("/static/favicon.svg", "/favicon.ico"):
        app.add_api_route(path, _favicon, include_in_schema=False)
    app.add_api_route("/language/{code}", _choose_language, include_in_schema=False)
    _error_pages(app)
    return app


def _choose_language(request: Request, code: str, next: str = "") -> Response:
    """The footer's switcher: remember ``code`` in a cookie and go back to the page. The
    choice is this browser's; it changes no account."""
    if code not in i18n.LANGUAGES:
        raise HTTPException(404, N_("No such language."))
    response = RedirectResponse(safe_next(next) or "/", status_code=303)
    response.set_cookie(
        i18n.COOKIE,
        code,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=portal(request).secure_cookies,
    )
    return response


def _stylesheet() -> Response:
    css = (TEMPLATES / "static" / "portal.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


def _favicon() -> Response:
    svg = (TEMPLATES / "static" / "favicon.svg").read_bytes()
    headers = {"Cache-Control": "public, max-age=86400"}
    return Response(svg, media_type="image/svg+xml", headers=headers)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_pages(app: FastAPI) -> None:
    """No traceback ever reaches a user: every failure is a page (or JSON under /api)."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if _is_api(request):
            headers = dict(exc.headers or {})
            if exc.status_code == 405:
                headers["Allow"] = api_schema.allowed_methods(app, request.url.path)
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)
        title = TITLES.get(exc.status_code, N_("Something went wrong"))
        # A detail is words marked N_ where raised (error.html translates it); Starlette's
        # own (the status's English phrase, "Method Not Allowed") gives way to ours.
        message = exc.detail
        if exc.detail == _phrase(exc.status_code):
            message = STOCK_WORDS.get(exc.status_code, N_("This request could not be handled."))
        return render(request, "error.html", exc.status_code, title=title, message=message)

    async def bad_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _is_api(request):
            return await request_validation_exception_handler(request, exc)
        return render(
            request,
            "error.html",
            400,
            title=TITLES[400],
            message=N_("A field was missing or too long. Go back and check the form."),
        )

    async def sign_in_first(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        target = "/agent/sign-in" if exc.agent else "/sign-in"
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        nxt = urlencode({"next": here}) if request.method == "GET" else ""
        return RedirectResponse(f"{target}?{nxt}" if nxt else target, status_code=303)

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("request failed for now: %s", exc)
        return _failure(
            request,
            503,
            N_("Please try again in a moment"),
            N_("The service is busy or its database is unreachable."),
        )

    async def crashed(request: Request, exc: Exception) -> Response:
        # The traceback goes to the server log (ServerErrorMiddleware re-raises), never here.
        return _failure(
            request,
            500,
            N_("Something went wrong"),
            N_("The error was logged. Please try again later."),
        )

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(SignInRequired, sign_in_first)
    app.add_exception_handler(TemporaryFailure, unavailable)
    app.add_exception_handler(Exception, crashed)


def _failure(request: Request, status: int, title: str, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": title}, status)
    try:
        return render(request, "error.html", status, title=title, message=message)
    except Exception:  # noqa: BLE001 - the last resort must not fail in its turn
        https = request.url.scheme == "https"
        return Response(
            f"{title}. {message}", status, media_type="text/plain", headers=security_headers(https)
        )
