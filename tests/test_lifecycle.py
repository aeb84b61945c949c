"""Ticket effects of inbound mail: waiting, active and closed tickets, automatic mail,
bounces of our own notices, and the rate limit, through real processing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from mailgate.core.settings import Settings
from mailgate.db import queries
from mailgate.db.models import Agent, Notice, Participant, Ticket
from mailgate.db.store import Store
from mailgate.tickets.mail import process
from tests.builders import build, deliver
from tests.conftest import fixed_clock

FIRST = "<first@customer.test>"


def _open(store: Store, settings: Settings, now: Callable[[], datetime]) -> str:
    """Ticket #1 from Alice; returns the acknowledgement's Message-ID."""
    result = deliver(store, settings, build(message_id=FIRST), now)
    assert result.ticket_number == 1
    with store.transaction() as session:
        return session.scalars(select(Notice.message_id)).one()


def _set(store: Store, *, status: str | None = None, assignee: str | None = None) -> None:
    with store.transaction() as session:
        ticket = session.get_one(Ticket, 1)
        if status:
            ticket.status = status
        if assignee:
            agent = Agent(email=assignee, name="Ann")
            session.add(agent)
            session.flush()
            ticket.assignee_id = agent.id


def _notices(store: Store) -> list[tuple[str, str, str]]:
    with store.transaction() as session:
        rows = session.scalars(select(Notice).order_by(Notice.id))
        return [(n.kind, n.recipient, n.state) for n in rows]


def _ticket(store: Store, number: int = 1) -> dict:  # type: ignore[type-arg]
    with store.transaction() as session:
        return queries.show_ticket(session, number)


def test_reply_moves_waiting_ticket_to_open(store: Store, settings: Settings, now) -> None:  # type: ignore[no-untyped-def]
    """A customer reply to a Waiting ticket moves it to Open, recorded in history."""
    _open(store, settings, now)
    _set(store, status="Waiting")
    result = deliver(store, settings, build(in_reply_to=FIRST, subject="Re: x"), now)
    ticket = _ticket(store)
    assert result.outcome == "reply" and ticket["status"] == "Open"
    assert any(e["field"] == "status" and e["new"] == "Open" for e in ticket["history"])


def test_reply_to_active_ticket_tells_the_assignee(store: Store, settings: Settings, now) -> None:  # type: ignore[no-untyped-def]
    """A reply to an active ticket is appended and the assignee gets one notice."""
    _open(store, settings, now)
    _set(store, status="Open", assignee="ann@example.com")
    deliver(store, settings, build(in_reply_to=FIRST, subject="Re: x"), now)
    assert _ticket(store)["status"] == "Open"
    assert _notices(store)[-1] == ("customer_replied", "ann@example.com", "pending")


def test_message_to_closed_ticket(store: Store, settings: Settings, now) -> None:  # type: ignore[no-untyped-def]
    """A closed ticket is unchanged, keeps the message, and the sender gets one notice."""
    # Bob was copied on the first message, so his reply belongs on the ticket.
    deliver(store, settings, build(message_id=FIRST, cc="Bob <bob@customer.test>"), now)
    _set(store, status="Closed", assignee="ann@example.com")
    before = _ticket(store)
    raw = build(sender="bob@customer.test", in_reply_to=FIRST, subject="Re: x")
    result = deliver(store, settings, raw, now)
    again = process(store, result.inbound_id, settings=settings, now=now)
    after = _ticket(store)
    assert result.outcome == again.outcome == "closed_ticket"
    assert after["status"] == "Closed" and after["updated_at"] == before["updated_at"]
    assert after["messages"][-1]["after_close"] is True
    assert after["history"][-1]["action"] == "received_after_close"
    assert [p["email"] for p in after["participants"]] == [
        p["email"] for p in before["participants"]
    ]
    closed = [n for n in _notices(store) if n[0] != "acknowledgement"]
    # One notice, to the sender, and no agent is alerted.
    assert closed == [("closed_ticket", "bob@customer.test", "pending")]


def test_auto_reply_to_closed_ticket_is_not_answered(  # type: ignore[no-untyped-def]
    store: Store, settings: Settings, now
) -> None:
    """An out-of-office to a closed ticket is kept in history and answered by nothing."""
    _open(store, settings, now)
    _set(store, status="Closed")
    raw = build(in_reply_to=FIRST, subject="Out of office: x")
    assert deliver(store, settings, raw, now).outcome == "closed_ticket"
    assert _notices(store)[-1][::2] == ("closed_ticket", "suppressed")


def test_auto_reply_changes_no_status_and_joins_no_one(  # type: ignore[no-untyped-def]
    store: Store, settings: Settings, now
) -> None:
    """An auto-reply is recorded on its ticket, with no status change and no notice."""
    ack = _open(store, settings, now)
    _set(store, status="Waiting", assignee="ann@example.com")
    raw = build(
        sender="robot@customer.test",
        in_reply_to=f"<{ack}>",
        subject="Automatic reply: [#1]",
        headers=[("Auto-Submitted", "auto-replied")],
    )
    result = deliver(store, settings, raw, now)
    ticket = _ticket(store)
    assert result.outcome == "automatic" and ticket["status"] == "Waiting"
    assert "robot@customer.test" not in [p["email"] for p in ticket["participants"]]
    assert ticket["messages"][-1]["screening"]["category"] == "auto_reply"
    assert ticket["messages"][-1]["thread_method"] == "references"
    assert _notices(store)[-1][::2] == ("customer_replied", "suppressed")


def test_bounce_of_our_notice_marks_it_bounced(store: Store, settings: Settings, now) -> None:  # type: ignore[no-untyped-def]
    """A DSN naming our acknowledgement joins ticket #1 and marks that notice bounced."""
    ack = _open(store, settings, now)
    raw = (
        b"From: MAILER-DAEMON@mx.customer.test\r\nTo: support@example.com\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn@mx.test>\r\n"
        b"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nUser unknown\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; alice@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"From: support@example.com\r\nMessage-ID: <" + ack.encode() + b">\r\n\r\n--b--\r\n"
    )
    result = deliver(store, settings, raw, now)
    assert (result.ticket_number, result.outcome) == (1, "automatic")
    assert _notices(store) == [("acknowledgement", "alice@customer.test", "bounced")]
    message = _ticket(store)["messages"][-1]
    assert message["screening"]["category"] == "bounce"
    assert message["screening"]["bounced_notices"] == [1]


def test_unmatched_automatic_mail_opens_a_tagged_ticket(  # type: ignore[no-untyped-def]
    store: Store, settings: Settings, now
) -> None:
    """An auto-reply or bounce that matches nothing opens a tagged ticket, unacknowledged."""
    auto = build(sender="bob@customer.test", subject="Out of Office", message_id="<o@x.test>")
    bounce = build(sender="MAILER-DAEMON@mx.test", subject="Undelivered", message_id="<b@x.test>")
    numbers = [deliver(store, settings, raw, now).ticket_number for raw in (auto, bounce)]
    assert [_ticket(store, n)["tags"] for n in numbers] == [["auto_reply"], ["bounce"]]
    assert [n[2] for n in _notices(store)] == ["suppressed", "suppressed"]


def test_rate_limit_per_address(store: Store, settings: Settings) -> None:
    """At most five automatic notices an hour to one address; the next hour allows more."""
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    _open(store, settings, fixed_clock(start))
    _set(store, status="Closed")
    for minute in range(1, 7):
        raw = build(in_reply_to=FIRST, subject=f"again {minute}")
        deliver(store, settings, raw, fixed_clock(start + timedelta(minutes=minute)))
    states = [n[2] for n in _notices(store)]
    # The acknowledgement plus four closed-ticket notices reach the limit of five.
    assert states == ["pending"] * 5 + ["suppressed"] * 2
    with store.transaction() as session:
        reason = session.scalars(select(Notice.last_error).order_by(Notice.id.desc())).first()
    assert reason is not None and reason.startswith("rate limit")
    later = fixed_clock(start + timedelta(minutes=61))
    deliver(store, settings, build(in_reply_to=FIRST, subject="much later"), later)
    assert _notices(store)[-1][2] == "pending"


def test_reply_text_is_kept_apart_from_the_full_body(  # type: ignore[no-untyped-def]
    store: Store, settings: Settings, now
) -> None:
    """The new text of a reply is stored beside the untouched full body."""
    _open(store, settings, now)
    body = "Works now, thanks!\n\nOn Mon, Jan 5, 2026 at 10:00 Support <support@example.com> wrote:\n> old"
    deliver(store, settings, build(in_reply_to=FIRST, body=body), now)
    with store.transaction() as session:
        from mailgate.db.models import TicketMessage

        message = session.scalars(select(TicketMessage).order_by(TicketMessage.id.desc())).first()
        assert message is not None
        assert message.body_reply == "Works now, thanks!"
        assert "> old" in message.body_text


def test_participants_unchanged_by_closed_ticket_mail(  # type: ignore[no-untyped-def]
    store: Store, settings: Settings, now
) -> None:
    """A stranger writing to a closed ticket by reference does not become a participant:
    a Message-ID is no secret, so her mail opens a new ticket linked to the one it names."""
    _open(store, settings, now)
    _set(store, status="Resolved")
    result = deliver(store, settings, build(sender="eve@else.test", in_reply_to=FIRST), now)
    with store.transaction() as session:
        emails = set(session.scalars(select(Participant.email).where(Participant.ticket_id == 1)))
    assert "eve@else.test" not in emails
    assert result.outcome == "new_ticket" and result.ticket_number == 2
    assert _ticket(store, 2)["links"] == [{"number": 1, "kind": "referenced"}]
