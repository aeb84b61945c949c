"""Change any field from the agent's ticket page (issue 20, item 1): priority, type and
tags, each a form post with the CSRF token through its write-side function; tags and
the screening category shown on the queue and the ticket page. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mailgate.db.models import HistoryEvent, Ticket
from tests.mail import build
from tests.web_support import Site, csrf_from, form, make_site, sign_in_agent


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url)
    yield s
    s.store.engine.dispose()


def _ticket(site: Site, number: int) -> tuple[Ticket, list[tuple[str, str, str, str]]]:
    with site.store.transaction() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        events = session.scalars(
            select(HistoryEvent)
            .where(HistoryEvent.ticket_id == ticket.id, HistoryEvent.field != "")
            .order_by(HistoryEvent.id)
        )
        return ticket, [(e.actor, e.field, e.old, e.new) for e in events]


def test_priority_type_and_tags_from_the_ticket_page(site: Site) -> None:
    """Each form changes its field, records who did it, and returns to the ticket."""
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    page = f"/tickets/{n}"
    shown = client.get(page).text
    for action in ("priority", "type", "tags"):
        assert f'action="/agent/tickets/{n}/{action}"' in shown
    sent = [
        form(client, f"/agent/tickets/{n}/priority", page, priority="Urgent"),
        form(client, f"/agent/tickets/{n}/type", page, type="Technical"),
        form(client, f"/agent/tickets/{n}/tags", page, add="printer, Fire  smoke"),
    ]
    assert [(r.status_code, r.headers["location"].split("?")[0]) for r in sent] == [(303, page)] * 3
    # Ticked tags go; the two fields together are one change.
    removed = client.post(
        f"/agent/tickets/{n}/tags",
        data={"csrf": csrf_from(client, page), "add": "room4", "remove": ["fire", "smoke"]},
    )
    assert removed.status_code == 303
    ticket, events = _ticket(site, n)
    assert (ticket.priority, ticket.type, list(ticket.tags)) == (
        "Urgent",
        "Technical",
        ["printer", "room4"],
    )
    assert events == [
        ("ann@example.com", "priority", "Normal", "Urgent"),
        ("ann@example.com", "type", "General", "Technical"),
        ("ann@example.com", "tags", "", "printer,fire,smoke"),
        ("ann@example.com", "tags", "printer,fire,smoke", "printer,room4"),
    ]
    # The same value again changes nothing and records nothing.
    form(client, f"/agent/tickets/{n}/priority", page, priority="Urgent")
    assert len(_ticket(site, n)[1]) == 4
    shown = client.get(page).text
    assert '<span class="tag">printer</span>' in shown
    assert 'name="remove" value="room4"' in shown
    assert '<option value="Urgent" selected>' in shown


@pytest.mark.parametrize(
    ("action", "fields", "code", "words"),
    [
        ("priority", {"priority": "Sky-high"}, 400, "unknown priority"),
        ("type", {"type": "Gossip"}, 400, "unknown type"),
        ("tags", {"add": "x" * 65}, 400, "a tag is one word"),
    ],
)
def test_bad_values_are_explained(
    site: Site, action: str, fields: dict[str, str], code: int, words: str
) -> None:
    """A wrong value comes back as the error page saying why, with the way back."""
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    response = form(client, f"/agent/tickets/{n}/{action}", f"/tickets/{n}", **fields)
    assert response.status_code == code
    assert words in response.text and f'href="/tickets/{n}"' in response.text
    assert _ticket(site, n)[1] == []


def test_a_closed_ticket_refuses_and_hides_the_forms(site: Site) -> None:
    client = sign_in_agent(site)
    n = site.numbers["eve"]
    page = f"/tickets/{n}"
    assert form(client, f"/agent/tickets/{n}/close", page, confirm="yes").status_code == 303
    for action, fields in (
        ("priority", {"priority": "High"}),
        ("type", {"type": "Technical"}),
        ("tags", {"add": "late"}),
    ):
        refused = form(client, f"/agent/tickets/{n}/{action}", page, **fields)
        assert refused.status_code == 409 and "closed" in refused.text, action
    assert f'action="/agent/tickets/{n}/priority"' not in client.get(page).text


def test_the_forms_need_this_sessions_csrf_token(site: Site) -> None:
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    for action, fields in (
        ("priority", {"priority": "High"}),
        ("type", {"type": "Technical"}),
        ("tags", {"add": "vpn"}),
    ):
        refused = client.post(f"/agent/tickets/{n}/{action}", data=fields)
        assert refused.status_code == 403, action
    ticket, events = _ticket(site, n)
    assert (ticket.priority, ticket.type, list(ticket.tags), events) == (
        "Normal",
        "General",
        [],
        [],
    )


def test_queue_and_page_show_tags_and_the_screening_category(site: Site) -> None:
    """Each queue row shows its tags and its first message's screening category."""
    bulk = site.ingest(
        build(
            sender="News <news@acme.test>",
            subject="Our newsletter",
            body="Read all about it.\n",
            headers={"Precedence": "bulk", "List-Id": "<news.acme.test>"},
        )
    )
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    form(client, f"/agent/tickets/{n}/tags", f"/tickets/{n}", add="printer")
    queue = client.get("/agent").text
    rows = {
        number: queue.split(f'<td><a href="/tickets/{number}">#{number}</a></td>', 1)[1].split(
            "</tr>", 1
        )[0]
        for number in (n, bulk)
    }
    assert '<span class="tag">printer</span>' in rows[n]
    assert '<span class="screening">ordinary</span>' in rows[n]
    assert '<span class="screening">bulk</span>' in rows[bulk]
    assert '<span class="tag">' not in rows[bulk]
    page = client.get(f"/tickets/{bulk}").text
    assert '<span class="screening">bulk</span>' in page
