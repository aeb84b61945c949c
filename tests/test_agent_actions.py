"""The action services the portal, API and CLI share, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mailgate.core import notices as core_notices
from mailgate.core.errors import ActionRefused, InvalidValue, NotFound
from mailgate.db.models import HistoryEvent, MessageIdEntry, Ticket, TicketLink
from mailgate.threading import tokens
from mailgate.tickets import changes, messages, notify, opening
from mailgate.tickets.actors import Actor
from tests.conftest import SECRET
from tests.web_support import Site, make_site

ANN = Actor("ann@example.com", "ann@example.com", "Ann")


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url)
    yield s
    s.store.engine.dispose()


def _events(site: Site, number: int) -> list[tuple[str, str, str]]:
    with site.store.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        rows = session.scalars(
            select(HistoryEvent)
            .where(HistoryEvent.ticket_id == ticket.id)
            .order_by(HistoryEvent.id)
        )
        return [(e.actor, e.action, e.new) for e in rows]


def test_closing_is_final(site: Site) -> None:
    """Once closed: leaving closed, reply, assign, team, close are refused; notes and links work."""
    n, at, s = site.numbers["carol"], site.clock(), site.settings
    with site.store.transaction() as session:
        changes.close(session, settings=s, number=n, actor=ANN, at=at)
    refused = [
        lambda x: changes.change_status(x, settings=s, number=n, actor=ANN, status="Open", at=at),
        # Closed is closed for every status in the closed category (issue 19, item 10).
        lambda x: changes.change_status(
            x, settings=s, number=n, actor=ANN, status="Resolved", at=at
        ),
        lambda x: messages.reply(x, settings=s, number=n, actor=ANN, body="hi", at=at),
        lambda x: changes.assign(
            x, settings=s, number=n, actor=ANN, assignee="bob@example.com", at=at
        ),
        lambda x: changes.set_team(x, settings=s, number=n, actor=ANN, team="billing", at=at),
        lambda x: changes.close(x, settings=s, number=n, actor=ANN, at=at),
        lambda x: messages.customer_reply(
            x, settings=s, number=n, author="carol@acme.test", body="hi", at=at
        ),
    ]
    for action in refused:
        with (
            pytest.raises(ActionRefused, match="open a new ticket"),
            site.store.transaction() as session,
        ):
            action(session)
    with site.store.transaction() as session:
        messages.note(session, settings=s, number=n, actor=ANN, body="kept", at=at)
        changes.link(session, number=n, other_number=site.numbers["dave"], actor=ANN, at=at)
    assert [a for _, a, _ in _events(site, n)][-3:] == ["status", "note", "linked"]


def test_reply_notice_threads_to_the_customer_and_back(site: Site) -> None:
    """A reply notice answers the customer's Message-ID and its own is signed and indexed."""
    n = site.numbers["carol"]
    with site.store.transaction() as session:
        messages.reply(
            session, settings=site.settings, number=n, actor=ANN, body="On it.", at=site.clock()
        )
    [notice] = site.notices("agent_replied")
    assert notice.recipient == "carol@acme.test" and notice.in_reply_to.endswith("@customer.test")
    assert tokens.read_message_id(notice.message_id, [SECRET]) == n
    with site.store.transaction() as session:
        entry = session.scalar(
            select(MessageIdEntry).where(MessageIdEntry.message_id == notice.message_id)
        )
        assert entry is not None and entry.notice_id == notice.id and entry.direction == "outbound"


def test_notify_is_idempotent_and_never_mails_the_support_address(site: Site) -> None:
    """The same cause twice is one notice; mailgate's own addresses are never notified."""
    with site.store.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == site.numbers["carol"]))
        assert ticket is not None and ticket.number is not None
        kwargs = {"ticket": ticket, "settings": site.settings, "now": site.clock()}
        event = notify.ticket_event(session, ticket, core_notices.STATUS_CHANGE, "c1")
        first = notify.notify(session, event, **kwargs)
        again = notify.notify(session, event, **kwargs)
        ours = notify.notify(
            session,
            core_notices.Event(
                kind=core_notices.STATUS_CHANGE,
                cause="c2",
                ticket_number=ticket.number,
                requester="support+5-x@example.com",
            ),
            **kwargs,
        )
        assert len(first) == 1 and first[0].state == "pending" and again == []
        assert [(n.state, n.last_error) for n in ours] == [
            ("suppressed", "recipient is one of mailgate's own addresses")
        ]


def test_links_go_both_ways_once(site: Site) -> None:
    """Linking makes one link each way; again changes nothing; a ticket never links to itself."""
    a, b = site.numbers["carol"], site.numbers["dave"]
    for _ in range(2):
        with site.store.transaction() as session:
            changes.link(session, number=a, other_number=b, actor=ANN, at=site.clock())
    with site.store.transaction() as session:
        assert len(session.scalars(select(TicketLink)).all()) == 2
        with pytest.raises(InvalidValue):
            changes.link(session, number=a, other_number=a, actor=ANN, at=site.clock())
        with pytest.raises(InvalidValue):
            changes.link(session, number=a, other_number=12345, actor=ANN, at=site.clock())
        with pytest.raises(NotFound):
            messages.note(
                session, settings=site.settings, number=12345, actor=ANN, body="x", at=site.clock()
            )


def test_assignment_needs_an_active_agent_and_tells_them(site: Site) -> None:
    """Assigning an inactive or unknown agent is refused; a real assignment notifies the assignee."""
    n = site.numbers["dave"]
    with site.store.transaction() as session:
        with pytest.raises(InvalidValue):
            changes.assign(
                session,
                settings=site.settings,
                number=n,
                actor=ANN,
                assignee="ghost@example.com",
                at=site.clock(),
            )
        changes.assign(
            session,
            settings=site.settings,
            number=n,
            actor=ANN,
            assignee="BOB@example.com",
            at=site.clock(),
        )
        changes.assign(
            session,
            settings=site.settings,
            number=n,
            actor=ANN,
            assignee="bob@example.com",
            at=site.clock(),
        )
    # Bob is told once, though assigned twice (the second is no change). Round robin
    # may have given the new ticket to Ann first; that notice is hers.
    assert [
        (x.kind, x.recipient) for x in site.notices("assigned") if x.recipient == "bob@example.com"
    ] == [("assigned", "bob@example.com")]
    assert _events(site, n)[-1] == ("ann@example.com", "assigned", "bob@example.com")


def test_open_ticket_validates_and_acknowledges(site: Site) -> None:
    """Unknown type or priority and empty subjects are refused; a good ticket is acknowledged."""
    s, at = site.settings, site.clock()
    with site.store.transaction() as session:
        for bad in ({"type_": "Billing"}, {"priority": "Meh"}, {"subject": "  "}):
            args = {"subject": "Hello", "type_": "General", **bad}
            with pytest.raises(InvalidValue):
                new = opening.typed_ticket(requester="x@acme.test", body="b", via="api", **args)
                opening.open_ticket(session, new, settings=s, at=at)
        new = opening.typed_ticket(
            requester="X@Acme.test",
            subject=" Many   spaces ",
            body="b",
            type_="Technical",
            via="api",
            actor="api:crm",
        )
        ticket = opening.open_ticket(session, new, settings=s, at=at).ticket
        assert (ticket.requester, ticket.subject, ticket.customer_id is not None) == (
            "x@acme.test",
            "Many spaces",
            True,
        )
        number = ticket.number
    assert number is not None and _events(site, number)[0] == ("api:crm", "created", "")
    assert [x.recipient for x in site.notices("acknowledgement")] == ["x@acme.test"]
