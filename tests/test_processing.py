"""Processing: an inbound row becomes a ticket change, once, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from mailgate.core.errors import TemporaryFailure
from mailgate.core.settings import Settings
from mailgate.db.models import HistoryEvent, InboundMessage, Ticket, TicketLink, TicketMessage
from mailgate.db.store import Store
from mailgate.inbound.intake import Envelope, accept
from mailgate.tickets import mail as processing
from mailgate.tickets.mail import ProcessResult, process
from tests.mail import build


@pytest.fixture
def deliver(
    store: Store, settings: Settings, now: Callable[[], datetime]
) -> Callable[[bytes], ProcessResult]:
    def run(raw: bytes) -> ProcessResult:
        accepted = accept(
            store, raw, source="test", envelope=Envelope(), max_bytes=10_000_000, now=now
        )
        return process(store, accepted.inbound_id, settings=settings, now=now)

    return run


def set_status(store: Store, number: int, status: str) -> None:
    with store.transaction() as session:
        session.scalars(select(Ticket).where(Ticket.number == number)).one().status = status


def ticket(store: Store, number: int) -> Ticket:
    with store.transaction() as session:
        return session.scalars(select(Ticket).where(Ticket.number == number)).one()


def test_new_ticket_fields(store: Store, deliver: Callable[[bytes], ProcessResult]) -> None:
    """A first message opens a ticket in the first `new` status with the configured defaults."""
    result = deliver(build(cc="Dan <dan@customer.test>, support+x@example.com"))
    assert (result.state, result.outcome, result.ticket_number) == ("processed", "new_ticket", 1)
    t = ticket(store, 1)
    assert (t.status, t.type, t.priority, t.requester) == (
        "New",
        "General",
        "Normal",
        "carol@customer.test",
    )
    with store.transaction() as session:
        people = {p.email: p.role for p in session.get_one(Ticket, t.id).participants}
    assert people == {"carol@customer.test": "requester", "dan@customer.test": "cc"}


def test_reply_by_references_appends(
    store: Store, deliver: Callable[[bytes], ProcessResult]
) -> None:
    """A reply whose References name a known message joins that ticket."""
    deliver(build(message_id="<first@customer.test>"))
    result = deliver(build(subject="Re: x", references="<other@x> <first@customer.test>"))
    assert (result.outcome, result.ticket_number) == ("reply", 1)
    with store.transaction() as session:
        methods = session.scalars(
            select(TicketMessage.thread_method).order_by(TicketMessage.id)
        ).all()
    assert methods == ["new", "references"]


def test_waiting_ticket_reopens_on_customer_reply(
    store: Store, deliver: Callable[[bytes], ProcessResult]
) -> None:
    """A customer reply moves a `waiting` ticket back to Open, with a history event."""
    deliver(build(message_id="<w1@customer.test>"))
    set_status(store, 1, "Waiting")
    deliver(build(in_reply_to="<w1@customer.test>"))
    assert ticket(store, 1).status == "Open"
    with store.transaction() as session:
        change = session.scalars(select(HistoryEvent).where(HistoryEvent.field == "status")).one()
    assert (change.old, change.new) == ("Waiting", "Open")


@pytest.mark.parametrize("closed", ["Resolved", "Closed"])
def test_closed_ticket_never_changes(
    store: Store, deliver: Callable[[bytes], ProcessResult], closed: str
) -> None:
    """A reply to a ticket in the closed category is kept after close and changes nothing (invariant 4)."""
    deliver(build(message_id="<c1@customer.test>"))
    set_status(store, 1, closed)
    before = ticket(store, 1)
    result = deliver(build(in_reply_to="<c1@customer.test>"))
    assert result.outcome == "closed_ticket" and result.ticket_number == 1
    after = ticket(store, 1)
    assert (after.status, after.updated_at) == (before.status, before.updated_at)
    with store.transaction() as session:
        kept = session.scalars(select(TicketMessage).order_by(TicketMessage.id.desc())).first()
        assert kept is not None and kept.after_close
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_subject_tag_from_participant_joins(
    store: Store, deliver: Callable[[bytes], ProcessResult]
) -> None:
    """A subject tag joins the ticket when its sender already takes part."""
    deliver(build())
    result = deliver(build(subject="Re: [#1] printer", message_id="<t2@customer.test>"))
    assert (result.outcome, result.ticket_number) == ("reply", 1)


def test_subject_tag_from_stranger_opens_linked_ticket(
    store: Store, deliver: Callable[[bytes], ProcessResult]
) -> None:
    """A subject tag from someone outside the ticket opens a new ticket linked to it (invariant 6)."""
    deliver(build())
    result = deliver(build(sender="mallory@evil.test", subject="[#1] give me the data"))
    assert (result.outcome, result.ticket_number) == ("new_ticket", 2)
    with store.transaction() as session:
        link = session.scalars(select(TicketLink)).one()
        assert (link.ticket_id, link.other_ticket_id, link.kind) == (2, 1, "referenced")


def test_processing_twice_has_no_further_effect(
    store: Store,
    settings: Settings,
    deliver: Callable[[bytes], ProcessResult],
    now: Callable[[], datetime],
) -> None:
    """Running process() again on a processed row returns the same outcome and adds nothing."""
    first = deliver(build())
    again = process(store, first.inbound_id, settings=settings, now=now)
    assert again == first
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(TicketMessage)) == 1


def test_over_limit_message_is_quarantined_with_reason(
    store: Store, settings: Settings, now: Callable[[], datetime]
) -> None:
    """A message over a structural limit is kept, marked quarantined with the limit named."""
    import dataclasses

    tight = dataclasses.replace(
        settings, limits=dataclasses.replace(settings.limits, max_headers=3)
    )
    accepted = accept(store, build(), source="test", envelope=Envelope(), max_bytes=10**7, now=now)
    result = process(store, accepted.inbound_id, settings=tight, now=now)
    assert (result.state, result.outcome) == ("quarantined", "refused")
    assert "max_headers" in result.error
    with store.transaction() as session:
        row = session.get_one(InboundMessage, accepted.inbound_id)
        assert row.raw.startswith(b"From: Carol")  # the raw message is kept for a human
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_failures_are_counted_then_marked_failed(
    store: Store, settings: Settings, now: Callable[[], datetime]
) -> None:
    """A processing error is recorded on the row; after max_attempts the row is failed (invariant 8)."""
    import dataclasses

    # No statuses at all: opening a ticket cannot pick a `new` status and raises KeyError.
    broken = dataclasses.replace(
        settings,
        queue=dataclasses.replace(settings.queue, max_attempts=2),
        tickets=dataclasses.replace(settings.tickets, statuses=()),
    )
    accepted = accept(store, build(), source="test", envelope=Envelope(), max_bytes=10**7, now=now)
    for attempt in (1, 2):
        with pytest.raises(KeyError):
            process(store, accepted.inbound_id, settings=broken, now=now)
        with store.transaction() as session:
            row = session.get_one(InboundMessage, accepted.inbound_id)
            assert row.attempts == attempt and "KeyError" in row.last_error
    assert row.state == "failed"
    # Failed stays failed until an operator retries it, even with a working config.
    result = process(store, accepted.inbound_id, settings=settings, now=now)
    assert result.state == "failed"
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_reused_message_id_with_other_content_is_not_dropped(
    store: Store, deliver: Callable[[bytes], ProcessResult]
) -> None:
    """A mailer that reuses one Message-ID for a different message gets both kept."""
    first = deliver(build(message_id="<fixed@form.test>", body="first question\n"))
    second = deliver(build(message_id="<fixed@form.test>", body="another question\n"))
    assert (first.outcome, second.outcome) == ("new_ticket", "new_ticket")
    third = deliver(
        b"Received: by relay.test\r\n"
        + build(message_id="<fixed@form.test>", body="first question\n")
    )
    assert third.outcome == "duplicate"
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(TicketMessage)) == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL: FOR UPDATE waits
def test_row_taken_by_another_process_meanwhile_keeps_one_outcome(
    store: Store,
    settings: Settings,
    now: Callable[[], datetime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`mailgate run`'s receiver and worker may take the same row. A second process that
    tries to finish it while this one holds it must wait (SQLite: the write lock is
    taken before the row is read), never overwrite ``new_ticket`` with ``duplicate``."""
    assert store.is_sqlite
    accepted = accept(
        store, build(), source="test", envelope=Envelope(), max_bytes=10_000_000, now=now
    )
    rival = Store(store.url, sqlite_busy_timeout_ms=200)  # another process's connections
    real_apply = processing._apply
    rival_saw: list[str] = []

    def rival_moves_first(*args: Any, **kwargs: Any) -> Any:
        if not rival_saw:  # once: the rival's own _apply comes through here too
            rival_saw.append("started")
            try:
                rival_saw.append(
                    process(rival, accepted.inbound_id, settings=settings, now=now).outcome
                )
            except TemporaryFailure:
                rival_saw.append("kept waiting")
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(processing, "_apply", rival_moves_first)
    try:
        result = process(store, accepted.inbound_id, settings=settings, now=now)
    finally:
        rival.engine.dispose()
    with store.transaction() as session:
        row = session.get_one(InboundMessage, accepted.inbound_id)
        assert (row.state, row.outcome) == ("processed", "new_ticket")
        assert session.scalar(select(func.count()).select_from(TicketMessage)) == 1
    assert (result.state, result.outcome) == ("processed", "new_ticket")
    assert rival_saw == ["started", "kept waiting"]
