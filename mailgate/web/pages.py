"""HTML pages: the jinja2 environment over ``templates/web`` and the one render call.

Autoescaping is on for every template; customer HTML reaches a page only
through the ``sanitized`` filter.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mailgate.core.html import sanitize
from mailgate.web import auth
from mailgate.web.context import portal

# The package's own copy (mailgate/templates, package data): the source tree's folder
# does not exist once mailgate is installed from a wheel.
TEMPLATES = Path(str(files("mailgate") / "templates" / "web"))
# No script at all: the portal works without JavaScript, so none is allowed. Styles and
# images from this site only, which also stops remote images in mail (tracking pixels).
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(https: bool) -> dict[str, str]:
    """Headers every response carries."""
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        # Sign-in links carry a token in the path: never hand it to another site.
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _size(value: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024  # type: ignore[assignment]
    return str(value)


def _sanitized(markup: str) -> Markup:
    # Stored HTML was sanitized when the mail was parsed; doing it again here means no
    # row from an import, an old version or a bug is ever shown raw.
    return Markup(sanitize(markup))  # noqa: S704 - the sanitizer's output is the safe HTML


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["size"] = _size
    env.filters["sanitized"] = _sanitized
    return env


# What a page says after an action redirected to it (``?done=KEY``): fixed words, never
# text from the request.
DONE = {
    "reply": "Reply sent.",
    "note": "Note added.",
    "status": "Status changed.",
    "assign": "Assignee changed.",
    "team": "Team changed.",
    "priority": "Priority changed.",
    "type": "Type changed.",
    "tags": "Tags updated.",
    "dates": "Dates set.",
    "close": "Ticket closed.",
    "link": "Tickets linked.",
    "activity": "Time logged.",
    "merge": "Tickets merged: the conversation goes on here.",
    "helpers": "Helpers updated.",
    "departments": "Departments updated.",
    "suppliers": "Suppliers updated.",
    "todos": "To-do added.",
    "new": "Ticket opened.",
}


def render(request: Request, name: str, code: int = 200, /, **context: Any) -> HTMLResponse:
    """Render page ``name`` for this request, with the signed-in principal, the form token
    and the words for an action just done (``?done=``)."""
    p = portal(request)
    principal = getattr(request.state, "principal", None)
    context.setdefault("done", DONE.get(request.query_params.get("done", ""), ""))
    html = (
        environment()
        .get_template(name)
        .render(
            principal=principal,
            csrf=auth.csrf_token(request),
            tickets_settings=p.settings.tickets,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=code)
    response.headers.update(security_headers(p.settings.web.base_url.startswith("https://")))
    # Pages show tickets: no shared cache may keep them, and Back after sign-out shows nothing.
    response.headers["Cache-Control"] = "no-store"
    return response
