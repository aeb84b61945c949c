"""The agent portal: password and proxy sign-in, the queue, and every action on a ticket."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from mailgate.db.models import Agent, HistoryEvent, Ticket, TicketLink, TicketMessage
from tests.web_support import (
    ANN_PASSWORD,
    Site,
    csrf_from,
    form,
    make_site,
    sign_in_agent,
)


def _password(site: Site, email: str, password: str, client=None):  # type: ignore[no-untyped-def]
    client = client or site.client()
    data = {"email": email, "password": password, "csrf": csrf_from(client, "/agent/sign-in")}
    return client.post("/agent/sign-in", data=data)


def _ticket(site: Site, number: int) -> Ticket:
    with site.store.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        return ticket


def test_password_sign_in(site: Site) -> None:
    """The right password signs in; a wrong one, an unknown address or an inactive agent do not."""
    assert _password(site, "ann@example.com", ANN_PASSWORD).headers["location"] == "/agent"
    wrong = _password(site, "ann@example.com", "not it at all")
    assert wrong.status_code == 401 and "do not match" in wrong.text
    assert _password(site, "zed@example.com", ANN_PASSWORD).status_code == 401
    with site.store.transaction() as session:
        ann = session.scalar(select(Agent).where(Agent.email == "ann@example.com"))
        assert ann is not None
        ann.active = False
    assert _password(site, "ann@example.com", ANN_PASSWORD).status_code == 401


def test_customer_sign_in_link_never_makes_an_agent(site: Site) -> None:
    """An agent's address signing in by emailed link is a customer there, not an agent."""
    from tests.web_support import sign_in_customer

    client = sign_in_customer(site, "ann@example.com")
    assert client.get("/agent").status_code == 403


def test_failed_passwords_are_rate_limited(tmp_path: Path) -> None:
    """After the allowed failures the account slows down: the failing client, even with
    the right password, waits 1 s (tests/test_web_limits.py has the rules in full)."""
    site = make_site(f"sqlite:///{tmp_path / 'm.db'}", password_failures_per_address_per_hour=3)
    client = site.client()
    assert [_password(site, "ann@example.com", "wrong", client).status_code for _ in range(3)] == [
        401
    ] * 3
    blocked = _password(site, "ann@example.com", ANN_PASSWORD, client)
    assert blocked.status_code == 429 and "Too many" in blocked.text
    assert _password(site, "bob@example.com", ANN_PASSWORD + "!", client).status_code == 303
    site.clock.advance(seconds=1)
    assert _password(site, "ann@example.com", ANN_PASSWORD, client).status_code == 303
    site.store.engine.dispose()


def test_trusted_proxy_header_signs_agents_in(tmp_path: Path) -> None:
    """The proxy header names the agent only from a trusted proxy, and only an active agent."""
    site = make_site(
        f"sqlite:///{tmp_path / 'm.db'}",
        trusted_proxy_header="X-Remote-User",
        trusted_proxies=("testclient",),
    )
    client = site.client()
    page = client.get("/agent", headers={"X-Remote-User": "Ann@Example.com"})
    assert page.status_code == 200 and "ann@example.com" in page.text
    assert client.get("/agent", headers={"X-Remote-User": "mallory@example.com"}).status_code == 403
    token = csrf_from(client, "/agent/sign-in")
    number = site.numbers["dave"]
    noted = client.post(
        f"/agent/tickets/{number}/note",
        data={"csrf": token, "body": "via proxy"},
        headers={"X-Remote-User": "ann@example.com"},
    )
    assert noted.status_code == 303
    site.store.engine.dispose()
    untrusted = make_site(f"sqlite:///{tmp_path / 'u.db'}", trusted_proxy_header="X-Remote-User")
    spoofed = untrusted.client().get("/agent", headers={"X-Remote-User": "ann@example.com"})
    assert spoofed.status_code == 303
    untrusted.store.engine.dispose()


def test_queue_filters_by_status_team_and_assignee(site: Site) -> None:
    """Status, team and assignee filters each narrow the queue as named."""
    client = sign_in_agent(site)
    carol, dave, eve = site.numbers["carol"], site.numbers["dave"], site.numbers["eve"]
    ticket = f"/tickets/{carol}"
    form(client, f"/agent/tickets/{carol}/assign", ticket, assignee="ann@example.com")
    form(client, f"/agent/tickets/{dave}/team", f"/tickets/{dave}", team="billing")
    form(client, f"/agent/tickets/{eve}/close", f"/tickets/{eve}", confirm="yes")

    def shown(query: str) -> set[int]:
        text = client.get(f"/agent?{query}").text
        return {n for n in (carol, dave, eve) if f'href="/tickets/{n}"' in text}

    assert shown("") == {carol, dave}
    assert shown("status=closed") == {eve}
    assert shown("status=all") == {carol, dave, eve}
    assert shown("status=Closed") == {eve}
    assert shown("team=billing") == {dave}
    assert shown("team=support") == {carol}
    assert shown("assignee=me") == {carol}
    assert shown("assignee=none") == {dave}
    assert shown("assignee=bob@example.com") == set()


def test_agent_ticket_page_shows_notes_history_and_actions(site: Site) -> None:
    """Agents see internal notes, the history and the action forms."""
    page = sign_in_agent(site).get(f"/tickets/{site.numbers['carol']}")
    assert site.note_text in page.text and "internal note" in page.text
    assert "History" in page.text and "Carol opened the ticket by mail" in page.text
    for action in ("reply", "note", "status", "assign", "team", "close", "link"):
        assert f'action="/agent/tickets/{site.numbers["carol"]}/{action}"' in page.text


def test_reply_note_status_assign_team_link_through_the_portal(site: Site) -> None:
    """Each form changes the ticket, records history, and writes the notices (and only those)."""
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    page = f"/tickets/{n}"
    assert (
        form(client, f"/agent/tickets/{n}/reply", page, body="Fire brigade sent.").status_code
        == 303
    )
    assert form(client, f"/agent/tickets/{n}/note", page, body="They were quick").status_code == 303
    assert (
        form(client, f"/agent/tickets/{n}/assign", page, assignee="bob@example.com").status_code
        == 303
    )
    assert (
        form(client, f"/agent/tickets/{n}/assign", page, assignee="ann@example.com").status_code
        == 303
    )
    assert form(client, f"/agent/tickets/{n}/status", page, status="Waiting").status_code == 303
    assert form(client, f"/agent/tickets/{n}/team", page, team="billing").status_code == 303
    assert (
        form(client, f"/agent/tickets/{n}/link", page, other=f"#{site.numbers['dave']}").status_code
        == 303
    )
    ticket = _ticket(site, n)
    assert ticket.status == "Waiting" and ticket.first_response_at is not None
    with site.store.transaction() as session:
        messages = list(
            session.scalars(select(TicketMessage).where(TicketMessage.ticket_id == ticket.id))
        )
        events = [
            (e.action, e.field, e.old, e.new)
            for e in session.scalars(
                select(HistoryEvent).where(HistoryEvent.ticket_id == ticket.id)
            )
        ]
        links = {(link.ticket_id, link.kind) for link in session.scalars(select(TicketLink))}
        assignee = session.get(Agent, ticket.assignee_id)
    assert [(m.direction, m.body_text) for m in messages][-2:] == [
        ("outbound", "Fire brigade sent."),
        ("note", "They were quick"),
    ]
    assert ("status", "status", "New", "Open") in events  # the first reply starts the work
    assert ("assigned", "assignee", "", "bob@example.com") in events
    assert ("assigned", "assignee", "bob@example.com", "ann@example.com") in events
    assert ("status", "status", "Open", "Waiting") in events
    assert ("team", "team", "support", "billing") in events
    assert len(links) == 2 and assignee is not None and assignee.email == "ann@example.com"
    notices = [(x.kind, x.recipient) for x in site.notices() if x.kind != "sign_in_link"]
    # Ann assigning herself is not news to her; the note tells nobody.
    assert notices == [
        ("agent_replied", "carol@acme.test"),
        ("assigned", "bob@example.com"),
        ("status_changed", "carol@acme.test"),
    ]


def test_closing_is_final_in_the_portal(site: Site) -> None:
    """After close, status, reply, assign, close are 409 and change nothing; notes, links work."""
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    page = f"/tickets/{n}"
    assert form(client, f"/agent/tickets/{n}/close", page, confirm="yes").status_code == 303
    ticket = _ticket(site, n)
    assert ticket.status == "Closed" and ticket.closed_at is not None
    for action, fields in (
        ("status", {"status": "Open"}),
        ("status", {"status": "Resolved"}),  # closed is closed for every closed status
        ("reply", {"body": "one more thing"}),
        ("assign", {"assignee": "bob@example.com"}),
        ("close", {}),  # refused at once: nothing to confirm
    ):
        refused = form(client, f"/agent/tickets/{n}/{action}", page, **fields)
        assert refused.status_code == 409, action
        assert "closed" in refused.text
    assert _ticket(site, n).status == "Closed"
    assert form(client, f"/agent/tickets/{n}/note", page, body="post-mortem").status_code == 303
    assert (
        form(client, f"/agent/tickets/{n}/link", page, other=str(site.numbers["dave"])).status_code
        == 303
    )
    assert [x.kind for x in site.notices("status_changed")] == ["status_changed"]


@pytest.mark.parametrize(
    ("action", "fields", "code"),
    [
        ("status", {"status": "Sleeping"}, 400),
        ("assign", {"assignee": "nobody@example.com"}, 400),
        ("team", {"team": "ghosts"}, 400),
        ("link", {"other": "abc"}, 400),
        ("link", {"other": "999"}, 400),
        ("reply", {"body": "   "}, 400),
    ],
)
def test_bad_values_are_explained(
    site: Site, action: str, fields: dict[str, str], code: int
) -> None:
    """A wrong value comes back as a page saying what was wrong, with the way back."""
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    response = form(client, f"/agent/tickets/{n}/{action}", f"/tickets/{n}", **fields)
    assert response.status_code == code
    assert f'href="/tickets/{n}"' in response.text


def test_actions_on_a_missing_ticket_are_404(site: Site) -> None:
    """An action on a ticket number that does not exist is a 404 page."""
    client = sign_in_agent(site)
    response = form(client, "/agent/tickets/4040/note", "/agent", body="x")
    assert response.status_code == 404 and "no such ticket" in response.text.lower()


def test_each_action_says_it_was_done_and_closing_asks_first(site: Site) -> None:
    """After an action the ticket page says so (POST-redirect-GET kept: the words come
    from a fixed list, never from the request); closing, which is final, asks first."""
    client = sign_in_agent(site)
    n = site.numbers["dave"]
    page = f"/tickets/{n}"
    sent = form(client, f"/agent/tickets/{n}/note", page, body="internal")
    assert (sent.status_code, sent.headers["location"]) == (303, f"{page}?done=note")
    assert (
        '<p class="done" role="status">Note added.</p>' in client.get(sent.headers["location"]).text
    )
    assert 'class="done"' not in client.get(f"{page}?done=<script>").text
    asked = form(client, f"/agent/tickets/{n}/close", page)
    assert asked.status_code == 200 and f"Close #{n} for good?" in asked.text
    assert _status(site, n) != "Closed"  # nothing closed by the first post
    closed = form(client, f"/agent/tickets/{n}/close", page, confirm="yes")
    assert closed.headers["location"] == f"{page}?done=close"
    assert _status(site, n) == "Closed"


def _status(site: Site, number: int) -> str:
    with site.store.transaction() as session:
        return session.scalars(select(Ticket.status).where(Ticket.number == number)).one()
