"""Mail loops against a real auto-responding peer: a loopback SMTP server receives
mailgate's notices and answers each one back into mailgate's pipeline. Counting what
crossed the wire proves the exchange stops."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from mailgate.core.settings import OutboundSettings, OutboundSmtpSettings, Settings
from mailgate.db.models import Notice, Ticket
from mailgate.db.store import Store
from mailgate.inbound.handoff import process_and_send
from mailgate.inbound.intake import Envelope, accept
from tests.builders import build
from tests.smarthost import Received, Smarthost, running

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PEER = "alice@customer.test"


def _ooo(notice: Received) -> bytes:
    """What a typical out-of-office robot sends back (RFC 3834 compliant)."""
    return build(
        sender=PEER,
        subject=f"Out of Office: {notice.message['Subject']}",
        in_reply_to=notice.message["Message-ID"],
        body="I am away until Monday.",
        headers=[("Auto-Submitted", "auto-replied")],
    )


def _careless(notice: Received) -> bytes:
    """A robot that ignores every header: a plain reply, no markers, no OOO subject."""
    return build(
        sender=PEER,
        subject=f"Re: {notice.message['Subject']}",
        in_reply_to=notice.message["Message-ID"],
        body="Thank you for your message.",
    )


def _exchange(
    store: Store, settings: Settings, first: bytes, robot: Callable[[Received], bytes]
) -> tuple[int, int]:
    """Run the exchange to its end; returns (notices the peer got, replies it sent)."""
    answers: list[bytes] = []
    peer = Smarthost(on_message=lambda got: answers.append(robot(got)))
    minute = 0

    def now() -> datetime:
        return T0 + timedelta(minutes=minute)

    with running(peer) as port:
        smtp = OutboundSmtpSettings(host="127.0.0.1", port=port, security="none", timeout=5)
        s = dataclasses.replace(settings, outbound=OutboundSettings(transport="smtp", smtp=smtp))
        _feed(store, s, first, now)
        sent = 0
        # Bounded: a loop that did not stop would end here and fail the count below.
        while answers and sent < 50:
            minute += 1
            sent += 1
            _feed(store, s, answers.pop(0), now)
    return len(peer.received), sent


def _feed(store: Store, settings: Settings, raw: bytes, now: Callable[[], datetime]) -> None:
    accepted = accept(store, raw, source="ingest", envelope=Envelope(), max_bytes=10**7, now=now)
    process_and_send(store, accepted.inbound_id, settings=settings, now=now)


def test_out_of_office_peer_stops_after_two_messages(store: Store, settings: Settings) -> None:
    """New ticket → acknowledgement → out-of-office → nothing: two automatic messages."""
    notices, replies = _exchange(store, settings, build(sender=PEER), _ooo)
    assert (notices, replies) == (1, 1)
    with store.transaction() as session:
        kinds = [(n.kind, n.state) for n in session.scalars(select(Notice).order_by(Notice.id))]
        ticket = session.get_one(Ticket, 1)
        assert len(ticket.messages) == 2  # the auto-reply is kept on the ticket
    assert kinds == [("acknowledgement", "sent")]


def _to_files(settings: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(settings, outbound=OutboundSettings(folder=str(tmp_path / "out")))


def test_out_of_office_to_a_closed_ticket_stops_too(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """Closed-ticket notice → out-of-office → nothing."""
    _feed(
        store,
        _to_files(settings, tmp_path),
        build(sender=PEER, message_id="<c1@customer.test>"),
        lambda: T0,
    )
    with store.transaction() as session:
        session.get_one(Ticket, 1).status = "Closed"
    notices, replies = _exchange(
        store, settings, build(sender=PEER, in_reply_to="<c1@customer.test>"), _ooo
    )
    assert (notices, replies) == (1, 1)


def test_careless_robot_is_stopped_by_the_rate_limit(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """A robot that answers everything to a closed ticket gets at most 5 notices an hour."""
    _feed(
        store,
        _to_files(settings, tmp_path),
        build(sender=PEER, message_id="<c1@customer.test>"),
        lambda: T0,
    )
    with store.transaction() as session:
        session.get_one(Ticket, 1).status = "Closed"
    notices, replies = _exchange(
        store, settings, build(sender=PEER, in_reply_to="<c1@customer.test>"), _careless
    )
    # The acknowledgement (written by the file transport before) counts toward the five.
    limit = settings.outbound.max_per_hour_per_address
    assert notices == limit - 1 and replies == limit - 1
    with store.transaction() as session:
        last = session.scalars(select(Notice).order_by(Notice.id.desc())).first()
        assert last is not None and last.state == "suppressed"
        assert last.last_error.startswith("rate limit")
