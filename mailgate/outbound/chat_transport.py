"""POST a JSON body to a chat service or a webhook receiver: the one transport of chat
and webhook notices (``outbound.transport`` chooses how mail goes, not these).

Raises ``TemporaryFailure`` when a later try may work (5xx, 408, a timeout, a refused
connection), ``RetryAfter`` for a 429, and ``PermanentFailure`` for any other 4xx, a
redirect or an unusable URL. No message and no log line holds the URL: for Slack, Teams
and most receivers the URL itself is the secret; only its scheme and host are shown.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlsplit

from mailgate import __version__
from mailgate.core.errors import PermanentFailure, TemporaryFailure

# Long enough for a chat service on a bad day, short enough that a transaction holding
# the claimed notice (and SQLite's write lock) is never held long.
TIMEOUT_SECONDS = 10.0
# A Retry-After further away than this is taken as this: a notice is still worth sending.
MAX_RETRY_AFTER = timedelta(hours=24)
# How much of a refusal's body the notice keeps as its reason (Slack's "no_service",
# Mattermost's JSON error): enough to tell the operator what to fix.
EXCERPT_CHARS = 200
# What is read of a response at most: a reply is a word or a short JSON error.
MAX_READ = 65_536
USER_AGENT = f"mailgate/{__version__}"


class RetryAfter(TemporaryFailure):
    """A 429: try again, not before ``not_before`` (None: the service said not when)."""

    def __init__(self, message: str, *, not_before: datetime | None) -> None:
        super().__init__(message)
        self.not_before = not_before


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why ``url`` may not be posted to, or None. https only: the body (and for a signed
    webhook the signature) would cross the network in clear; plain http is allowed
    to this machine's loopback, where a local relay or a test receiver listens."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "is not an https:// URL"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return "is http:// to another machine; use https://"
    return None


def endpoint(url: str) -> str:
    """The part of ``url`` that may be shown: scheme, host and port, never the path."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    return f"{parts.scheme}://{parts.hostname}{port}" if parts.hostname else "(no host)"


def from_env(variable: str, environ: Mapping[str, str], *, what: str = "URL") -> str:
    """The value of ``$variable``; PermanentFailure naming the variable (never its
    value) when it is not named or not set."""
    if not variable:
        raise PermanentFailure(f"no environment variable is named for its {what}")
    value = environ.get(variable, "").strip()
    if not value:
        raise PermanentFailure(f"${variable} is not set (the {what} is read from it)")
    return value


def url_from_env(variable: str, environ: Mapping[str, str]) -> str:
    """The URL in ``$variable``, checked by ``url_problem``."""
    url = from_env(variable, environ)
    problem = url_problem(url)
    if problem:
        raise PermanentFailure(f"${variable} {problem}")
    return url


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """A Retry-After header (seconds, or an HTTP date) as a time; None when absent or
    unreadable. Never further than ``MAX_RETRY_AFTER``, never before ``now``."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return now + min(timedelta(seconds=int(value)), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(now, min(when, now + MAX_RETRY_AFTER))


def scrub(text: str, url: str) -> str:
    """``text`` on one line, short, without the URL or any part of its path or query:
    a receiver's error page may echo the path ("Cannot POST /hooks/<token>")."""
    try:
        parts = urlsplit(url)
        secrets = [url, parts.path, parts.query]
        secrets += [s for s in parts.path.split("/") if len(s) >= 4]
        secrets += [v for _, v in parse_qsl(parts.query) if len(v) >= 4]
    except ValueError:
        secrets = [url]
    for secret in sorted((s for s in secrets if s and s != "/"), key=len, reverse=True):
        text = text.replace(secret, "…")
    text = re.sub(r"\s+", " ", text).strip()
    return text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else "")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a 301/302 from a POST as a GET without the body: the message
    would be lost and reported sent. A redirect is refused (PermanentFailure) instead."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _opener(url: str) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
    host = urlsplit(url).hostname or ""
    if is_loopback(host):
        # A proxy from the environment (https_proxy) cannot reach this machine's loopback.
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers)


def post_json(
    url: str,
    body: bytes,
    *,
    now: datetime,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> int:
    """POST ``body`` (JSON) to ``url``; the HTTP status when it is 2xx, else raises.
    ``timeout``: seconds for the connection and for each read (``TIMEOUT_SECONDS``)."""
    timeout = TIMEOUT_SECONDS if timeout is None else timeout
    problem = url_problem(url)
    if problem:  # checked again here: urllib's own errors would quote the URL
        raise PermanentFailure(f"the URL {problem}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
    )
    where = endpoint(url)
    try:
        with _opener(url).open(request, timeout=timeout) as response:
            response.read(MAX_READ)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with contextlib.closing(exc):
            raise _refused(exc, url, now) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        detail = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        raise TemporaryFailure(f"{where} unreachable: {scrub(str(detail), url)}") from None
    except TimeoutError:
        raise TemporaryFailure(f"{where} did not answer within {timeout:g} s") from None
    except (http.client.HTTPException, OSError) as exc:
        raise TemporaryFailure(f"{where}: {type(exc).__name__}: {scrub(str(exc), url)}") from None
    except ValueError as exc:  # urllib refusing the URL: its words would quote it
        raise PermanentFailure(f"the URL cannot be used ({type(exc).__name__})") from None


def _refused(
    exc: urllib.error.HTTPError, url: str, now: datetime
) -> TemporaryFailure | PermanentFailure:
    """What a non-2xx answer means for the notice."""
    status = exc.code
    try:
        text = exc.read(MAX_READ).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        text = ""
    excerpt = scrub(text, url)
    reason = f"HTTP {status} {scrub(str(exc.reason or ''), url)}".strip()
    said = f"{reason}: {excerpt}" if excerpt else reason
    if status == 429:
        return RetryAfter(said, not_before=parse_retry_after(exc.headers.get("Retry-After"), now))
    if status in (408, 425) or status >= 500:
        return TemporaryFailure(said)
    if 300 <= status < 400:
        return PermanentFailure(f"{reason}: the URL redirects; configure the URL it points to")
    return PermanentFailure(said)
