"""Messages on a ticket: a customer's (by mail, portal or API), an agent's reply, a note.

One function per change, the same for every channel: each takes the ticket already
locked (``records.lock_ticket``), decides on what it read under that lock, records the
history and decides its notices through ``notify``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core import notices, sla
from mailgate.core import statuses as status_machine
from mailgate.core.attachments import Attachment
from mailgate.core.errors import InvalidValue
from mailgate.core.screening import Screening
from mailgate.core.settings import Settings
from mailgate.core.states import Outcome
from mailgate.db import people
from mailgate.db.models import HistoryEvent, Notice, Participant, Ticket, TicketMessage
from mailgate.tickets import sla_check, triggers
from mailgate.tickets.actors import Actor
from mailgate.tickets.changes import check_status, end_wait, enter_status, set_status
from mailgate.tickets.files import attach, typed_files
from mailgate.tickets.notify import about_message, tell_requester
from mailgate.tickets.records import history, lock_ticket, refuse_if_closed, typed_message

MAX_BODY_CHARS = 100_000
ASCII_BLANK = "".join(chr(c) for c in range(0x21))


@dataclass(frozen=True)
class Incoming:
    """A customer's message as the write side stores it, whatever channel brought it:
    mail fills in every field, the portal and the API only the text."""

    author_email: str
    author_name: str
    text: str
    via: str  # how it arrived: a thread method for mail (references, token, …), else portal/api/cli
    html: str = ""
    subject: str | None = None  # None: the ticket's subject
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    message_id: str = ""
    content_sha256: str = ""
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    inbound_id: int | None = None
    new_text: str = ""  # the text above the quotes (mail only)
    screening: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Added:
    """What a customer's message did: its outcome, the stored message, the notices."""

    outcome: Outcome
    message: TicketMessage
    notices: tuple[Notice, ...]


def clean_body(body: str) -> str:
    """A typed reply or note as stored: line endings normalised, surrounding blank lines
    dropped. Blank means nothing but ASCII spaces and control characters: one plain rule
    that the API's schema can state exactly."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = text.strip(ASCII_BLANK)
    if not text:
        raise InvalidValue("the message is empty")
    if len(text) > MAX_BODY_CHARS:
        raise InvalidValue("the message is longer than %(max)s characters", max=MAX_BODY_CHARS)
    return text


def store_message(
    session: Session,
    ticket: Ticket,
    incoming: Incoming,
    *,
    at: datetime,
    after_close: bool,
    direction: str = "inbound",
) -> TicketMessage:
    """The inbound ticket message with its attachments (``direction``: a customer's, or
    a supplier's, ``core.states.FROM_SUPPLIER``)."""
    message = TicketMessage(
        ticket_id=ticket.id,
        inbound_id=incoming.inbound_id,
        direction=direction,
        author_email=incoming.author_email,
        author_name=incoming.author_name.strip()[:255],
        to=list(incoming.to),
        cc=list(incoming.cc),
        subject=ticket.subject if incoming.subject is None else incoming.subject,
        body_text=incoming.text,
        body_html=incoming.html,
        body_reply=incoming.new_text,
        message_id=incoming.message_id,
        content_sha256=incoming.content_sha256,
        in_reply_to=list(incoming.in_reply_to),
        references=list(incoming.references),
        thread_method=incoming.via,
        screening=dict(incoming.screening),
        after_close=after_close,
        created_at=at,
    )
    session.add(message)
    session.flush()
    attach(session, message.id, incoming.attachments)
    return message


def add_customer_message(
    session: Session,
    ticket: Ticket,
    incoming: Incoming,
    *,
    settings: Settings,
    at: datetime,
    cause: str = "",
    screening: Screening | None = None,
    refuse_closed: bool = False,
) -> Added:
    """A customer's message on ``ticket`` (locked by the caller).

    A closed ticket never changes (invariant 4): mail is kept for the agents and its
    sender gets the "please open a new ticket" notice; a channel that can say no at once
    (portal, API) passes ``refuse_closed`` and gets ``ActionRefused``. ``cause`` names
    the notices (default: the message). Automatic mail is
    filed without changing anything. Otherwise a waiting ticket returns to the status it
    had before it waited, the author takes part from now on, and the assignee is told.
    """
    sender = incoming.author_email
    if status_machine.is_closed(ticket.status, settings.tickets):
        if refuse_closed:
            refuse_if_closed(ticket, settings)
        history(session, ticket, at, sender, "received_after_close")
        message = store_message(session, ticket, incoming, at=at, after_close=True)
        outcome, kind = Outcome.CLOSED_TICKET, notices.MESSAGE_TO_CLOSED
    elif screening is not None and screening.automatic:
        # An auto-reply or bounce belongs in the ticket's record, but it is not the
        # customer speaking: no status change, and the robot does not join the ticket.
        history(
            session, ticket, at, sender, "automatic_received", detail={"reason": screening.reason}
        )
        message = store_message(session, ticket, incoming, at=at, after_close=False)
        outcome, kind = Outcome.AUTOMATIC, notices.CUSTOMER_REPLY
    else:
        before = status_before_waiting(session, ticket, settings)
        change = status_machine.after_customer_reply(ticket.status, settings.tickets, before)
        if change is not None:
            end_wait(session, ticket, change, author=sender, settings=settings, at=at)
        ticket.updated_at = at
        known = {p.email for p in ticket.participants} | {ticket.requester}
        if sender and sender not in known:
            session.add(Participant(ticket_id=ticket.id, email=sender, role="cc"))
        history(session, ticket, at, sender, "customer_reply", detail={"via": incoming.via})
        message = store_message(session, ticket, incoming, at=at, after_close=False)
        outcome, kind = Outcome.REPLY, notices.CUSTOMER_REPLY
        was = change.old if change is not None else ticket.status
        fire = triggers.fire
        fire(
            session,
            ticket,
            "customer_replied",
            settings=settings,
            actor=None,
            at=at,
            from_status=was,
        )
    written = about_message(
        session,
        ticket,
        kind,
        cause or f"customer_reply:{message.id}",
        author=sender,
        message_id=incoming.message_id,
        inbound_id=incoming.inbound_id,
        settings=settings,
        now=at,
        screening=screening,
    )
    return Added(outcome, message, tuple(written))


def status_before_waiting(session: Session, ticket: Ticket, settings: Settings) -> str | None:
    """The status ``ticket`` (locked) had before it was set to the waiting status it is
    in, read from its history: the newest status events, followed back through waiting
    statuses (Waiting → Waiting on vendor) to the one that started the wait. None when
    the history does not say (a ticket changed outside the write side)."""
    if status_machine.category(ticket.status, settings.tickets) != "waiting":
        return None
    events = session.execute(
        select(HistoryEvent.old, HistoryEvent.new)
        .where(HistoryEvent.ticket_id == ticket.id, HistoryEvent.field == "status")
        .order_by(HistoryEvent.id.desc())
        .limit(20)  # a chain of waits longer than this is not worth following
    )
    current = ticket.status
    for old, new in events:
        if new != current:
            return None  # a gap in the record: better the default than a guess
        if status_machine.category(old, settings.tickets) != "waiting":
            return old
        current = old
    return None


def agent_reply(
    session: Session,
    ticket: Ticket,
    *,
    settings: Settings,
    actor: Actor,
    body: str,
    at: datetime,
    via: str,
    response: str = "",
    status: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> TicketMessage:
    """An answer to the requester on ``ticket`` (locked by the caller); they get the
    "agent replied" notice. ``response`` names the canned response the text came from;
    ``status`` moves the ticket there in the same step ("send and set to Waiting");
    ``attachments``, the files sent with it (``files.typed_files`` checks them)."""
    text = clean_body(body)
    if status is not None:
        check_status(settings, status)
    files = typed_files(settings, attachments)
    refuse_if_closed(ticket, settings)
    was = ticket.status
    message = typed_message(
        session,
        ticket,
        direction="outbound",
        author_email=actor.email or settings.outbound.from_address,
        author_name=actor.name,
        text=text,
        at=at,
        via=via,
        to=[ticket.requester],
        attachments=files,
    )
    if ticket.first_response_at is None:
        sla_check.record_met_late(session, ticket, settings, sla.FIRST_RESPONSE, at)
        ticket.first_response_at = at
    if status_machine.category(ticket.status, settings.tickets) == "new":
        # An answered ticket is being worked on (and, when a status follows, that is
        # the status a customer's answer to a wait returns it to).
        active = settings.tickets.first_status("active")
        set_status(session, ticket, active, actor, at, settings=settings)
    ticket.updated_at = at
    detail = {"message": str(message.id), **({"response": response} if response else {})}
    history(session, ticket, at, actor.label, "agent_reply", detail=detail)
    if status is not None and status != ticket.status:
        enter_status(session, ticket, status, settings=settings, actor=actor, at=at)
    # Before the notice, so the one notice names the status the triggers leave.
    fire = triggers.fire
    fire(session, ticket, "agent_replied", settings=settings, actor=actor, at=at, from_status=was)
    # One notice, the reply's, built after the status change so it names the new status
    # (its templates say "Status: …"). A status notice as well would be a second mail
    # about one step: the requester is asked to read the reply either way, and peers'
    # "send and set to pending" send one message too.
    cause = f"agent_reply:{message.id}"
    tell_requester(session, ticket, notices.AGENT_REPLY, cause, settings=settings, now=at)
    return message


def add_note(
    session: Session,
    ticket: Ticket,
    *,
    actor: Actor,
    body: str,
    at: datetime,
    via: str,
    attachments: tuple[Attachment, ...] = (),
) -> TicketMessage:
    """An internal note: agents only, no notice; allowed on a closed ticket (it changes
    nothing a customer sees). Its ``attachments`` (checked: ``files.typed_files``) are
    as internal as the note: a customer can neither see nor download them."""
    text = clean_body(body)
    message = typed_message(
        session,
        ticket,
        direction="note",
        author_email=actor.email,
        author_name=actor.name,
        text=text,
        at=at,
        via=via,
        subject="",
        attachments=attachments,
    )
    history(session, ticket, at, actor.label, "note", detail={"message": str(message.id)})
    return message


def customer_reply(
    session: Session,
    *,
    settings: Settings,
    number: int,
    author: str,
    body: str,
    at: datetime,
    via: str = "portal",
    author_name: str = "",
    attachments: Sequence[Attachment] = (),
) -> TicketMessage:
    """A customer's typed reply (portal, API) to ticket ``number``, with the files
    attached to it; refused on a closed ticket. The caller has checked that ``author``
    may see the ticket."""
    text = clean_body(body)
    files = typed_files(settings, attachments)
    ticket = lock_ticket(session, number=number)
    email = author.strip().lower()
    # A typed reply has no From name: she is stored under the name her mails gave her on
    # this ticket, so her messages and her history read as one person's (db.people).
    name = author_name.strip() or people.customer_names(session, ticket).get(email, "")
    incoming = Incoming(author_email=email, author_name=name, text=text, via=via, attachments=files)
    added = add_customer_message(
        session,
        ticket,
        incoming,
        settings=settings,
        at=at,
        refuse_closed=True,
    )
    return added.message


def reply(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    body: str,
    at: datetime,
    via: str = "portal",
    response: str = "",
    status: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> TicketMessage:
    """An agent's (or an integration's) reply to ticket ``number``, with its files, and
    the status it moves to with it (``status``): ``agent_reply``, under one lock, in the
    caller's transaction, so all are made or none."""
    ticket = lock_ticket(session, number=number)
    return agent_reply(
        session,
        ticket,
        settings=settings,
        actor=actor,
        body=body,
        at=at,
        via=via,
        response=response,
        status=status,
        attachments=attachments,
    )


def note(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    body: str,
    at: datetime,
    via: str = "portal",
    attachments: Sequence[Attachment] = (),
) -> TicketMessage:
    """An internal note on ticket ``number``, with its files: ``add_note``."""
    files = typed_files(settings, attachments)
    ticket = lock_ticket(session, number=number)
    return add_note(session, ticket, actor=actor, body=body, at=at, via=via, attachments=files)
