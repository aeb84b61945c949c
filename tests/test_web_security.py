"""Portal security: CSRF on every form, cookie flags, headers, error pages, logs, downloads."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from starlette.testclient import TestClient

from mailgate.db.models import HistoryEvent, SignInToken, TicketMessage
from mailgate.web import agent, agent_actions, agent_messages, api_tokens, customer
from mailgate.web.downloads import content_disposition, safe_content_type
from mailgate.web.pages import CSP
from tests.web_support import (
    Site,
    csrf_from,
    make_site,
    sign_in_agent,
    sign_in_customer,
    sign_in_link,
)


def _form_routes() -> list[str]:
    paths = []
    for router in (customer.router, agent.router, agent_actions.router, agent_messages.router):
        for route in router.routes:
            if "POST" in getattr(route, "methods", set()):
                paths.append(route.path.replace(":int}", "}"))
    return sorted(paths)


FORM_ROUTES = _form_routes()


def _fill(site: Site, path: str) -> str:
    return path.format(number=site.numbers["carol"], token="1-" + "a" * 43)


def _changes(site: Site) -> tuple[int | None, ...]:
    with site.store.transaction() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(m))
            for m in (TicketMessage, HistoryEvent, SignInToken)
        )


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Site, TestClient, TestClient]]:
    """One site with a signed-in customer and agent, for tests that change nothing."""
    s = make_site(f"sqlite:///{tmp_path_factory.mktemp('csrf') / 'm.db'}")
    yield s, sign_in_customer(s, "carol@acme.test"), sign_in_agent(s)
    s.store.engine.dispose()


@pytest.mark.parametrize("path", FORM_ROUTES)
@pytest.mark.parametrize("sent", ["missing", "other session's", "garbage"])
def test_every_form_post_needs_this_sessions_csrf_token(
    shared: tuple[Site, TestClient, TestClient], path: str, sent: str
) -> None:
    """Each form route refuses a post without this browser's token (403) and changes nothing."""
    site, carol, ann = shared
    who = ann if path.startswith("/agent/") else carol
    token = {
        "missing": None,
        "other session's": csrf_from(site.client()),
        "garbage": "x" * 43,
    }[sent]
    fields = {
        "body": "b",
        "subject": "s",
        "type": "General",
        "email": "carol@acme.test",
        "password": "p",
        "status": "Open",
        "assignee": "",
        "team": "",
        "other": "2",
        "priority": "High",
        "add": "vpn",
        "minutes": "5",
        "kind": "related",
        "into": "2",
        "confirm": "yes",
    }
    if token is not None:
        fields["csrf"] = token
    before = _changes(site)
    response = who.post(_fill(site, path), data=fields)
    assert response.status_code == 403, response.text
    assert "expired or came from another site" in response.text
    assert _changes(site) == before


def test_the_form_routes_are_the_expected_ones() -> None:
    """The CSRF table above really walks every form route (none are missed by a rename)."""
    assert len(FORM_ROUTES) == 19
    assert "/agent/tickets/{number}/close" in FORM_ROUTES and "/sign-in/{token}" in FORM_ROUTES


def _cookie_header(response) -> str:  # type: ignore[no-untyped-def]
    return next(v for k, v in response.headers.multi_items() if k == "set-cookie")


def test_session_cookie_flags_on_http_and_https(tmp_path: Path) -> None:
    """Cookies are HttpOnly and SameSite=Lax, Secure on https, with a Max-Age once signed in."""
    plain = make_site(f"sqlite:///{tmp_path / 'a.db'}", seed=False)
    cookie = _cookie_header(plain.client().get("/sign-in"))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie and "Max-Age" not in cookie
    plain.store.engine.dispose()
    secure = make_site(f"sqlite:///{tmp_path / 'b.db'}", base_url="https://support.example.com")
    client = secure.client("https://testserver")
    first = client.get("/sign-in")
    assert "; Secure" in _cookie_header(first)
    assert first.headers["strict-transport-security"].startswith("max-age=")
    client.post("/sign-in", data={"email": "carol@acme.test", "csrf": csrf_from(client)})
    path = sign_in_link(secure, "carol@acme.test")
    done = client.post(path, data={"csrf": csrf_from(client, path)})
    signed = _cookie_header(done)
    assert "; Secure" in signed and "HttpOnly" in signed and "SameSite=Lax" in signed
    assert f"Max-Age={12 * 3600}" in signed
    secure.store.engine.dispose()


def test_api_responses_set_no_cookie(site: Site) -> None:
    """The API is bearer-only: it never hands out a session cookie."""
    response = site.client().get("/api/tickets")
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "path", ["/sign-in", "/tickets", "/nowhere", "/static/portal.css", "/favicon.ico"]
)
def test_every_response_carries_the_security_headers(site: Site, path: str) -> None:
    """A restrictive CSP (no script at all), nosniff, no framing, no referrer."""
    response = sign_in_customer(site, "carol@acme.test").get(path)
    assert response.headers["content-security-policy"] == CSP
    assert "script-src" not in CSP and "default-src 'none'" in CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_pages_are_not_cached(site: Site) -> None:
    """Ticket pages say no-store, so Back after sign-out or a shared cache shows nothing."""
    page = sign_in_customer(site, "carol@acme.test").get(f"/tickets/{site.numbers['carol']}")
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/tickets/99999999999999999999999", 404),
        ("GET", "/tickets/abc", 404),
        ("DELETE", "/sign-in", 405),
    ],
)
def test_error_pages_are_pages(site: Site, method: str, path: str, code: int) -> None:
    """404 and 405 are the portal's own HTML page, never a bare or technical answer."""
    response = sign_in_customer(site, "carol@acme.test").request(method, path)
    assert response.status_code == code
    assert response.headers["content-type"].startswith("text/html")
    assert "<main>" in response.text and "Traceback" not in response.text


def test_a_form_with_a_missing_field_is_a_400_page(site: Site) -> None:
    """FastAPI's validation error becomes a readable page for people (JSON stays for the API)."""
    client = sign_in_customer(site, "carol@acme.test")
    response = client.post("/tickets/new", data={"csrf": csrf_from(client, "/tickets/new")})
    assert response.status_code == 400 and "check the form" in response.text


def test_database_trouble_is_a_503_page(site: Site) -> None:
    """A database failure under a request is a plain 503 page naming no exception or SQL."""
    client = TestClient(site.app, raise_server_exceptions=False, follow_redirects=False)
    token = csrf_from(client)
    with site.store.engine.begin() as conn:
        conn.execute(text("DROP TABLE rate_limit_hits"))
    response = client.post("/sign-in", data={"email": "carol@acme.test", "csrf": token})
    assert response.status_code == 503 and "try again" in response.text
    for leak in ("Traceback", "rate_limit_hits", "sqlite", "Error"):
        assert leak not in response.text


def test_a_crash_is_a_500_page_without_a_traceback(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception is a 500 page or JSON error, no traceback, headers still set."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals 0xdeadbeef")

    signed = sign_in_customer(site, "carol@acme.test")
    client = TestClient(site.app, raise_server_exceptions=False, follow_redirects=False)
    client.cookies = signed.cookies
    monkeypatch.setattr("mailgate.web.access.customer_ticket", broken)
    monkeypatch.setattr("mailgate.db.ticket_filters.summaries", broken)
    page = client.get(f"/tickets/{site.numbers['carol']}")
    assert page.status_code == 500 and "Something went wrong" in page.text
    assert "0xdeadbeef" not in page.text and "Traceback" not in page.text
    assert page.headers["content-security-policy"] == CSP
    with site.store.transaction() as session:
        token = api_tokens.add(session, "crash", site.clock())
    api = client.get("/api/tickets", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 500 and api.json() == {"detail": "Something went wrong"}


def test_access_log_never_holds_a_sign_in_token(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """The access log names the route of a sign-in link, never its token."""
    client = site.client()
    client.post("/sign-in", data={"email": "carol@acme.test", "csrf": csrf_from(client)})
    path = sign_in_link(site, "carol@acme.test")
    token = path.removeprefix("/sign-in/")
    with caplog.at_level(logging.INFO, logger="mailgate.web.access"):
        client.get(path)
        client.post(path, data={"csrf": csrf_from(client, path)})
    lines = [r.getMessage() for r in caplog.records if r.name == "mailgate.web.access"]
    assert any("/sign-in/[token] 200" in line for line in lines)
    assert any("/sign-in/[token] 303" in line for line in lines)
    assert all(token not in line for line in lines)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        ("a b.txt", "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"),
        ("Grüße.doc", "attachment; filename=\"Gru_e.doc\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe.doc"),
        ("日本.txt", "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"),
        ('x";y.exe', "attachment; filename=\"x__y.exe\"; filename*=UTF-8''x%22%3By.exe"),
        (
            "../../etc/passwd",
            "attachment; filename=\"_.._etc_passwd\"; filename*=UTF-8''.._.._etc_passwd",
        ),
        (
            "bad\r\nX-Evil: 1",
            "attachment; filename=\"badX-Evil: 1\"; filename*=UTF-8''badX-Evil%3A%201",
        ),
        ("", "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"),
    ],
)
def test_content_disposition_encoding(name: str, expected: str) -> None:
    """RFC 6266: an ASCII fallback without quotes or paths, and the exact name as filename*."""
    assert content_disposition(name) == expected


@pytest.mark.parametrize(
    ("stored", "served"),
    [
        ("application/pdf", "application/pdf"),
        ("Image/PNG; name=x.png", "image/png"),
        ("text/html", "text/html"),
        ("", "application/octet-stream"),
        ("pdf", "application/octet-stream"),
        ("text/html\r\nX-Evil: 1", "application/octet-stream"),
        ("a b/c", "application/octet-stream"),
    ],
)
def test_stored_content_type_is_served_only_when_well_formed(stored: str, served: str) -> None:
    """The stored type is kept when it is a valid media type, else octet-stream."""
    assert safe_content_type(stored) == served


def test_the_favicon_is_served(site: Site) -> None:
    """Browsers ask for /favicon.ico on every page: a picture, not a 404."""
    for path in ("/favicon.ico", "/static/favicon.svg"):
        icon = site.client().get(path)
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
        assert icon.content.startswith(b"<svg")
    assert 'rel="icon" href="/static/favicon.svg"' in site.client().get("/sign-in").text
