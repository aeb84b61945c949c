"""HTML pages: the jinja2 environment over ``templates/web`` and the one render call.

Autoescaping is on for every template; customer HTML reaches a page only
through the ``message_body`` filter (``web.message_body``), which sanitizes it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_date, format_time
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mailgate.core.errors import MailgateError
from mailgate.db.directory import customer_of
from mailgate.web import auth, i18n
from mailgate.web.context import portal
from mailgate.web.i18n import N_
from mailgate.web.message_body import message_body

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


def _when(value: datetime | str | None, language: str = "en") -> str:
    """A stored time (UTC, a datetime or its ISO text) in the reader's language."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    locale = i18n.locale(language)
    # The locale's medium date and short time ("Jan 5, 2026, 9:30 AM", "5 janv. 2026,
    # 09:30"), joined its own way: to the minute, as people read a ticket's times.
    date = format_date(value, "medium", locale=locale)
    time = format_time(value, "short", locale=locale)
    return str(locale.datetime_formats["medium"]).format(time, date) + " UTC"


def _size(value: int, language: str = "en") -> str:
    """A size in bytes for people, in the reader's units and number format."""
    _ = i18n.gettext_for(language)
    if value < 1024:
        return _("%(n)s bytes") % {"n": value}
    number, unit = (
        (value / 1024, _("%(n)s KB"))
        if value < 1024 * 1024
        else (
            value / 1024 / 1024,
            _("%(n)s MB"),
        )
    )
    return unit % {"n": format_decimal(number, "0.0", locale=i18n.locale(language))}


@cache
def environment(language: str = "en") -> Environment:
    """The pages in ``language``: one environment each, so each compiles its templates
    once with its own ``_()``."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # newstyle: ``_("%(n)s left", n=3)`` formats after translating, and escapes.
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = lambda value: _when(value, language)
    # A configured name (status, type, priority…): translated when it is a built-in one
    # (i18n.BUILT_IN_NAMES), shown as the operator wrote it otherwise.
    env.filters["label"] = i18n.translations(language).gettext
    env.filters["screening"] = lambda value: env.filters["label"](i18n.SCREENING.get(value, value))
    env.filters["size"] = lambda value: _size(value, language)
    env.filters["message_body"] = message_body
    return env


# What a page says after an action redirected to it (``?done=KEY``): fixed words, never
# text from the request.
DONE = {  # translated where shown (base.html)
    "reply": N_("Reply sent."),
    "note": N_("Note added."),
    "status": N_("Status changed."),
    "assign": N_("Assignee changed."),
    "team": N_("Team changed."),
    "priority": N_("Priority changed."),
    "type": N_("Type changed."),
    "tags": N_("Tags updated."),
    "dates": N_("Dates set."),
    "close": N_("Ticket closed."),
    "link": N_("Tickets linked."),
    "activity": N_("Time logged."),
    "merge": N_("Tickets merged: the conversation goes on here."),
    "helpers": N_("Helpers updated."),
    "departments": N_("Departments updated."),
    "suppliers": N_("Suppliers updated."),
    "todos": N_("To-do added."),
    "todo_done": N_("To-do marked done."),
    "new": N_("Ticket opened."),
}


def language(request: Request) -> str:
    """This request's language, worked out once (``i18n.choose`` says how)."""
    if hasattr(request.state, "language"):
        found: str = request.state.language
        return found
    p = portal(request)
    principal = getattr(request.state, "principal", None)

    def account_language() -> str:
        if principal is None or principal.is_agent:
            return ""
        with p.store.transaction() as session:
            account = customer_of(session, principal.email)
        return account.language if account else ""

    chosen = i18n.choose(request, account_language, p.settings.defaults.language)
    request.state.language = chosen
    return chosen


def gettext(request: Request) -> Callable[[str], str]:
    """``_`` in this request's language, for words a route puts together."""
    return i18n.gettext_for(language(request))


def plurals(request: Request) -> Callable[[str, str, int], str]:
    """``ngettext`` in this request's language, for words that change with a number: name
    it ``ngettext`` where it is called, so that pybabel extracts both forms."""
    return i18n.translations(language(request)).ngettext


# A page shows its ``title``, ``message``, ``error`` (and the like) through the template's
# ``_()``: a literal marked ``N_`` is translated there. Words with values in them are
# translated here instead, by the two below, and made ready for that ``_()``: jinja's
# newstyle gettext takes what it is given as trusted markup and formats it, so the text
# (a name someone typed is in it) is HTML-escaped here and its ``%`` doubled.


def _for_template(text: str) -> Markup:
    return Markup(escape(text).replace("%", "%%"))  # noqa: S704 - escaped just here


def error_text(request: Request, exc: MailgateError) -> Markup:
    """``exc``'s message in this request's language, for a page's ``_()`` (never for the
    API, which says ``str(exc)``: English)."""
    return _for_template(exc.translated(gettext(request)))


def say(request: Request, msgid: str, /, **params: object) -> Markup:
    """``msgid`` (marked ``N_`` where written) with ``params`` in this request's language,
    for a page's ``_()``: ``say(request, N_("Back to ticket #%(number)s"), number=n)``."""
    return _for_template(gettext(request)(msgid) % params)


def _here(request: Request) -> str:
    """This page's path and query, for the language switcher to come back to: the queue's
    filters are kept; the confirmation of an action (``done``) is not shown twice."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "done"]
    return request.url.path + (f"?{urlencode(query, safe='/')}" if query else "")


def render(request: Request, name: str, code: int = 200, /, **context: Any) -> HTMLResponse:
    """Render page ``name`` for this request, in its language, with the signed-in principal,
    the form token and the words for an action just done (``?done=``)."""
    p = portal(request)
    principal = getattr(request.state, "principal", None)
    context.setdefault("done", DONE.get(request.query_params.get("done", ""), ""))
    lang = language(request)
    html = (
        environment(lang)
        .get_template(name)
        .render(
            principal=principal,
            csrf=auth.csrf_token(request),
            tickets_settings=p.settings.tickets,
            lang=lang,
            languages=i18n.NAMES,
            here=_here(request),
            **context,
        )
    )
    response = HTMLResponse(html, status_code=code)
    response.headers.update(security_headers(p.settings.web.base_url.startswith("https://")))
    # Pages show tickets: no shared cache may keep them, and Back after sign-out shows nothing.
    response.headers["Cache-Control"] = "no-store"
    return response
