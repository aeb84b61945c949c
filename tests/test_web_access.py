"""Access control, route by route: no ticket is visible across accounts or signed out.

One table lists every route of the portal and API with who may use it; each
route is tried by a signed-out visitor, by a customer of another account, by
that account's admin, by a colleague of the same account who is not an admin,
and by a customer on an agent route. Every refused request must also leave the
database unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from mailgate.db.models import HistoryEvent, Notice, Ticket, TicketLink, TicketMessage
from mailgate.web import (
    agent,
    agent_actions,
    agent_involvement,
    agent_messages,
    agent_new,
    agent_todos,
    api,
    api_record,
    api_todos,
    api_tokens,
    customer,
    ops,
    reports,
)
from tests.web_support import Site, csrf_from, make_site, sign_in_agent, sign_in_customer

# (method, path, form fields, guard). {n}: Carol's ticket; {a}: its attachment.
# guard: "customer" = signed-in customers only, "signed_in" = customers and agents,
# "agent" = agents only, "api" = bearer token only.
PROTECTED: list[tuple[str, str, dict[str, str], str]] = [
    ("GET", "/tickets", {}, "signed_in"),
    ("GET", "/tickets/{n}", {}, "signed_in"),
    ("GET", "/tickets/{n}/attachments/{a}", {}, "signed_in"),
    ("GET", "/tickets/new", {}, "customer"),
    ("POST", "/tickets/new", {"subject": "x", "body": "y", "type": "General"}, "customer"),
    ("POST", "/tickets/{n}/reply", {"body": "let me in"}, "customer"),
    ("GET", "/agent", {}, "agent"),
    ("GET", "/agent/reports", {}, "agent"),
    ("POST", "/agent/tickets/{n}/reply", {"body": "hi"}, "agent"),
    ("POST", "/agent/tickets/{n}/note", {"body": "hi"}, "agent"),
    ("POST", "/agent/tickets/{n}/status", {"status": "Open"}, "agent"),
    ("POST", "/agent/tickets/{n}/assign", {"assignee": "ann@example.com"}, "agent"),
    ("POST", "/agent/tickets/{n}/team", {"team": "billing"}, "agent"),
    ("POST", "/agent/tickets/{n}/priority", {"priority": "High"}, "agent"),
    ("POST", "/agent/tickets/{n}/type", {"type": "Technical"}, "agent"),
    ("POST", "/agent/tickets/{n}/tags", {"add": "vpn"}, "agent"),
    ("POST", "/agent/tickets/{n}/dates", {"follow_up": "2d"}, "agent"),
    ("POST", "/agent/tickets/{n}/close", {"confirm": "yes"}, "agent"),
    ("POST", "/agent/tickets/{n}/link", {"other": "2"}, "agent"),
    ("POST", "/agent/tickets/{n}/activity", {"type": "Call", "minutes": "5"}, "agent"),
    ("POST", "/agent/tickets/{n}/merge", {"into": "2", "confirm": "yes"}, "agent"),
    ("GET", "/agent/new", {}, "agent"),
    ("POST", "/agent/new", {"requester": "zed@x.test", "subject": "s", "body": "b"}, "agent"),
    ("POST", "/agent/tickets/{n}/helpers", {"add": "bob@example.com"}, "agent"),
    ("POST", "/agent/tickets/{n}/departments", {"add": "billing"}, "agent"),
    ("POST", "/agent/tickets/{n}/suppliers", {"add": "Parts Co"}, "agent"),
    ("POST", "/agent/tickets/{n}/todos", {"title": "Call back"}, "agent"),
    ("GET", "/agent/todos", {}, "agent"),
    ("POST", "/agent/todos", {"title": "Call back"}, "agent"),
    ("POST", "/agent/todos/{t}/done", {}, "agent"),
    ("GET", "/api/tickets", {}, "api"),
    ("POST", "/api/tickets", {}, "api"),
    ("GET", "/api/tickets/{n}", {}, "api"),
    ("POST", "/api/tickets/{n}/replies", {}, "api"),
    ("POST", "/api/tickets/{n}/status", {}, "api"),
    ("POST", "/api/tickets/{n}/merge", {}, "api"),
    ("PATCH", "/api/tickets/{n}", {}, "api"),
    ("POST", "/api/tickets/{n}/activities", {}, "api"),
    ("POST", "/api/tickets/{n}/links", {}, "api"),
    ("GET", "/api/todos", {}, "api"),
    ("POST", "/api/todos", {}, "api"),
    ("POST", "/api/todos/{t}/done", {}, "api"),
]
# Open to everyone by design: signing in, signing out, the stylesheet, the API schema.
PUBLIC = {
    ("GET", "/"),
    ("GET", "/sign-in"),
    ("POST", "/sign-in"),
    ("GET", "/sign-in/{token}"),
    ("POST", "/sign-in/{token}"),
    ("POST", "/sign-out"),
    ("GET", "/agent/sign-in"),
    ("POST", "/agent/sign-in"),
    ("GET", "/static/portal.css"),
    ("GET", "/static/favicon.svg"),
    ("GET", "/favicon.ico"),
    ("GET", "/api/openapi.json"),
    # Monitoring: /healthz says only ok or unreachable; /metrics answers only the addresses
    # in web.metrics_allow (404 to everyone else, tests/test_metrics.py).
    ("GET", "/healthz"),
    ("GET", "/metrics"),
}
# Routes that name Carol's ticket: refused to other customers as 404, never 403, so a
# number tells nobody whether the ticket exists.
ON_TICKET = [r for r in PROTECTED if "{n}" in r[1] and r[3] in ("signed_in", "customer")]
HTML = [r for r in PROTECTED if r[3] != "api"]
AGENT = [r for r in PROTECTED if r[3] == "agent"]
API = [r for r in PROTECTED if r[3] == "api"]


def _id(route: tuple[str, str, dict[str, str], str]) -> str:
    return f"{route[0]} {route[1]}"


def _normalise(path: str) -> str:
    return path.replace(":int}", "}")


def test_the_table_covers_every_route() -> None:
    """Every route of the app is either in the access table or deliberately public."""
    routes = set()
    routers = (
        customer, agent, agent_actions, agent_messages, agent_new, agent_involvement,
        agent_todos, reports, api, api_record, api_todos, ops,
    )  # fmt: skip
    for router in (module.router for module in routers):
        for route in router.routes:
            for method in getattr(route, "methods", set()) - {"HEAD"}:
                routes.add((method, _normalise(route.path)))
    routes.update({("GET", "/static/portal.css"), ("GET", "/static/favicon.svg")})
    routes.add(("GET", "/favicon.ico"))
    routes.add(("GET", "/api/openapi.json"))
    table = {
        (
            m,
            p.replace("{a}", "{attachment_id}")
            .replace("{n}", "{number}")
            .replace("{t}", "{todo_id}"),
        )
        for m, p, *_ in PROTECTED
    }
    assert routes == table | PUBLIC


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    path: Path = tmp_path_factory.mktemp("access") / "mailgate.db"
    s = make_site(f"sqlite:///{path}")
    yield s
    s.store.engine.dispose()


@pytest.fixture(scope="module")
def browsers(site: Site) -> dict[str, TestClient]:
    """One signed-in browser per person, and one signed-out."""
    return {
        "anonymous": site.client(),
        "carol": sign_in_customer(site, "carol@acme.test"),
        "boss": sign_in_customer(site, "boss@acme.test"),
        "dave": sign_in_customer(site, "dave@acme.test"),
        "eve": sign_in_customer(site, "eve@globex.test"),
        "chief": sign_in_customer(site, "chief@globex.test"),
        "ann": sign_in_agent(site),
    }


def _state(site: Site) -> tuple[Any, ...]:
    """Everything a refused request must leave as it was."""
    with site.store.transaction() as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (Ticket, TicketMessage, HistoryEvent, Notice, TicketLink)
        )
        tickets = tuple(session.execute(select(Ticket.status, Ticket.assignee_id, Ticket.team_id)))
    return counts, tickets


def _call(site: Site, client: TestClient, route: tuple[str, str, dict[str, str], str]) -> Any:
    method, template, data, _ = route
    path = template.format(n=site.numbers["carol"], a=site.attachment_id, t=1)
    if method == "GET":
        return client.get(path)
    # A valid form token, so the refusal seen is the access check, not CSRF.
    return client.post(path, data={"csrf": csrf_from(client, "/sign-in"), **data})


@pytest.mark.parametrize("route", HTML, ids=_id)
def test_signed_out_visitor_is_sent_to_sign_in(
    site: Site, browsers: dict[str, TestClient], route: tuple[str, str, dict[str, str], str]
) -> None:
    """Signed out: every portal route redirects to the right sign-in page and shows nothing."""
    before = _state(site)
    response = _call(site, browsers["anonymous"], route)
    assert response.status_code == 303
    target = "/agent/sign-in" if route[3] == "agent" else "/sign-in"
    assert response.headers["location"].split("?")[0] == target
    assert "Printer on fire" not in response.text
    assert _state(site) == before


@pytest.mark.parametrize("who", ["eve", "chief", "dave"])
@pytest.mark.parametrize("route", ON_TICKET, ids=_id)
def test_other_customers_get_404_for_someone_elses_ticket(
    site: Site,
    browsers: dict[str, TestClient],
    route: tuple[str, str, dict[str, str], str],
    who: str,
) -> None:
    """Another account's customer, its admin, and a non-admin colleague all get 404."""
    before = _state(site)
    response = _call(site, browsers[who], route)
    assert response.status_code == 404, response.text
    assert "Printer on fire" not in response.text
    assert "room 4" not in response.text
    assert _state(site) == before


@pytest.mark.parametrize("who", ["carol", "boss", "ann"])
@pytest.mark.parametrize("route", [r for r in ON_TICKET if r[0] == "GET"], ids=_id)
def test_requester_admin_and_agents_do_see_it(
    site: Site,
    browsers: dict[str, TestClient],
    route: tuple[str, str, dict[str, str], str],
    who: str,
) -> None:
    """The control: the same routes work for the requester, the account's admin and agents."""
    response = _call(site, browsers[who], route)
    assert response.status_code == 200
    assert ("room 4" in response.text) or response.content.startswith(b"%PDF")


@pytest.mark.parametrize("who", ["eve", "dave"])
def test_ticket_list_shows_only_own_tickets(
    site: Site, browsers: dict[str, TestClient], who: str
) -> None:
    """A customer's list holds their own tickets only, not their colleagues' or others'."""
    page = browsers[who].get("/tickets?status=all")
    assert page.status_code == 200
    assert "Printer on fire" not in page.text
    own = {"eve": "Invoice wrong", "dave": "VPN is down"}[who]
    assert own in page.text


def test_admin_list_shows_the_whole_account(site: Site, browsers: dict[str, TestClient]) -> None:
    """An account admin sees every ticket of the account, and none of another account."""
    page = browsers["boss"].get("/tickets?status=all")
    assert "Printer on fire" in page.text and "VPN is down" in page.text
    assert "Invoice wrong" not in page.text


@pytest.mark.parametrize("route", AGENT, ids=_id)
def test_customers_get_403_on_agent_routes(
    site: Site, browsers: dict[str, TestClient], route: tuple[str, str, dict[str, str], str]
) -> None:
    """A signed-in customer cannot use any agent route, even on their own ticket."""
    before = _state(site)
    response = _call(site, browsers["carol"], route)
    assert response.status_code == 403
    assert _state(site) == before


@pytest.mark.parametrize("route", API, ids=_id)
@pytest.mark.parametrize("who", ["anonymous", "carol", "ann", "revoked"])
def test_api_needs_a_live_bearer_token(
    site: Site,
    browsers: dict[str, TestClient],
    route: tuple[str, str, dict[str, str], str],
    who: str,
) -> None:
    """No token, a revoked token, or a portal session cookie: 401 on every API route."""
    before = _state(site)
    headers = {}
    client = browsers.get(who, browsers["anonymous"])
    if who == "revoked":
        with site.store.transaction() as session:
            name = f"old-{API.index(route)}"
            token = api_tokens.add(session, name, site.clock())
            api_tokens.revoke(session, name, site.clock())
        headers = {"Authorization": f"Bearer {token}"}
    method, template, _, _ = route
    path = template.format(n=site.numbers["carol"], t=1)
    body = {"requester": "x@acme.test", "subject": "s", "body": "b", "status": "Open"}
    response = client.request(
        method, path, headers=headers, json=body if method == "POST" else None
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Printer on fire" not in response.text
    assert _state(site) == before
