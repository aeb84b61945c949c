"""Races on one ticket, on PostgreSQL with real threads: closing is final on every path.

For each of 40 tickets waiting on the customer, a change from a customer (a reply by
mail, or a portal reply) or an integration (an API status change) and an agent's close
are released at the same moment by a barrier. Each write takes the ticket's row lock
before it decides, so they apply one after the other: either the customer's change
lands first and the close follows, or the close lands first and the other sees a
closed ticket (mail is kept as received after close; the portal and API are refused).
Never a closed ticket back in an active status.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from mailgate.core.states import Outcome
from mailgate.db.models import HistoryEvent, InboundMessage, Ticket, TicketMessage
from mailgate.inbound.intake import Envelope, accept
from mailgate.tickets import changes
from mailgate.tickets.actors import Actor
from mailgate.tickets.mail import process
from mailgate.web import api_tokens
from tests.mail import build
from tests.web_support import Site, csrf_from, make_site, sign_in_customer

pytestmark = pytest.mark.postgres
TICKETS = 40
PAIRS_AT_ONCE = 5  # ten threads: within the engine's pool, so each starts at once
ANN = Actor("ann@example.com", "ann@example.com", "Ann")


@pytest.fixture
def site(pg_url: str) -> Iterator[Site]:
    s = make_site(pg_url, seed=False)
    yield s
    s.store.engine.dispose()


def _waiting_tickets(site: Site) -> list[tuple[int, str]]:
    """40 tickets by mail, each set Waiting by an agent: (number, first Message-ID)."""
    made = []
    for i in range(TICKETS):
        message_id = f"<race-{i}@acme.test>"
        number = site.ingest(
            build(sender=f"C{i} <c{i}@acme.test>", subject=f"Race {i}", message_id=message_id)
        )
        with site.store.transaction() as session:
            changes.change_status(
                session,
                settings=site.settings,
                number=number,
                actor=ANN,
                status="Waiting",
                at=site.clock(),
            )
        made.append((number, message_id))
    return made


def _close(site: Site, number: int) -> None:
    with site.store.transaction() as session:
        changes.close(session, settings=site.settings, number=number, actor=ANN, at=site.clock())


def _race(pairs: list[tuple[Callable[[], Any], Callable[[], Any]]]) -> list[BaseException]:
    """Run each pair's two calls released together by a barrier; errors are collected."""
    errors: list[BaseException] = []

    def run(barrier: threading.Barrier, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    for start in range(0, len(pairs), PAIRS_AT_ONCE):
        threads = []
        for first, second in pairs[start : start + PAIRS_AT_ONCE]:
            barrier = threading.Barrier(2)
            threads += [threading.Thread(target=run, args=(barrier, c)) for c in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a racing write is stuck"
    return errors


def _actions(site: Site, number: int) -> tuple[Ticket, list[str]]:
    with site.store.transaction() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        events = session.scalars(
            select(HistoryEvent)
            .where(HistoryEvent.ticket_id == ticket.id)
            .order_by(HistoryEvent.id)
        )
        return ticket, [f"{e.action}:{e.new}" if e.action == "status" else e.action for e in events]


def _assert_closed_for_good(site: Site, number: int, customer_action: str) -> str:
    """The ticket ended Closed, and the customer's change sits wholly before the close or
    was kept as after-close; returns which of the two happened."""
    ticket, actions = _actions(site, number)
    assert ticket.status == "Closed" and ticket.closed_at is not None, (number, actions)
    closing = actions.index("status:Closed")
    assert all(not a.startswith("status:") for a in actions[closing + 1 :]), actions
    if customer_action in actions:
        assert actions.index(customer_action) < closing, actions
        return "before"
    return "after"


def test_mail_reply_racing_a_close(site: Site) -> None:
    """A customer's reply by mail processed as an agent closes: closed stays closed, and
    a reply that came second is kept in the history as received after close."""
    tickets = _waiting_tickets(site)
    pairs = []
    rows: dict[int, int] = {}
    for number, message_id in tickets:
        with site.store.transaction() as session:  # the requester replies
            requester = session.scalars(
                select(Ticket.requester).where(Ticket.number == number)
            ).one()
        accepted = accept(
            site.store,
            build(sender=requester, subject="Re: race", in_reply_to=message_id),
            source="ingest",
            envelope=Envelope(),
            max_bytes=site.settings.smtp.max_message_bytes,
            now=site.clock,
        )
        rows[number] = accepted.inbound_id

        def mail(inbound_id: int = accepted.inbound_id) -> Any:
            return process(site.store, inbound_id, settings=site.settings, now=site.clock)

        pairs.append((mail, lambda n=number: _close(site, n)))
    assert _race(pairs) == []
    seen = set()
    for number, _ in tickets:
        # A reply by mail sent first has the sender back in an active status before the close.
        order = _assert_closed_for_good(site, number, "customer_reply")
        with site.store.transaction() as session:
            row = session.get_one(InboundMessage, rows[number])
            message = session.scalars(
                select(TicketMessage).where(TicketMessage.inbound_id == row.id)
            ).one()
            assert row.outcome == (Outcome.REPLY if order == "before" else Outcome.CLOSED_TICKET)
            assert message.after_close == (order == "after")
        _, actions = _actions(site, number)
        assert ("received_after_close" in actions) == (order == "after")
        seen.add(order)
    print(f"mail reply vs close: {sorted(seen)} over {TICKETS} tickets")


def test_portal_reply_racing_a_close(site: Site) -> None:
    """The account admin's portal reply as an agent closes: a reply after the close is
    refused (409), never applied to the closed ticket."""
    tickets = _waiting_tickets(site)
    signed_in = sign_in_customer(site, "boss@acme.test")
    token = csrf_from(signed_in, f"/tickets/{tickets[0][0]}")
    statuses: dict[int, int] = {}

    def portal_reply(number: int) -> None:
        client = site.client()
        client.cookies.update(signed_in.cookies)
        response = client.post(
            f"/tickets/{number}/reply", data={"csrf": token, "body": "Any news?"}
        )
        statuses[number] = response.status_code

    pairs = [
        (lambda n=number: portal_reply(n), lambda n=number: _close(site, n))
        for number, _ in tickets
    ]
    assert _race(pairs) == []
    for number, _ in tickets:
        order = _assert_closed_for_good(site, number, "customer_reply")
        assert statuses[number] == (303 if order == "before" else 409), (number, statuses[number])


def test_api_status_change_racing_a_close(site: Site) -> None:
    """An integration's status change as an agent closes: one after the close is refused
    (409); one before it is followed by the close."""
    tickets = _waiting_tickets(site)
    with site.store.transaction() as session:
        bearer = {"Authorization": f"Bearer {api_tokens.add(session, 'crm', site.clock())}"}
    statuses: dict[int, int] = {}

    def api_open(number: int) -> None:
        response = site.client().post(
            f"/api/tickets/{number}/status", headers=bearer, json={"status": "Open"}
        )
        statuses[number] = response.status_code

    pairs = [
        (lambda n=number: api_open(n), lambda n=number: _close(site, n)) for number, _ in tickets
    ]
    assert _race(pairs) == []
    for number, _ in tickets:
        order = _assert_closed_for_good(site, number, "status:Open")
        assert statuses[number] == (200 if order == "before" else 409), (number, statuses[number])
