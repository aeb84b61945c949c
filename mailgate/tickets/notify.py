"""The one door to the outbox: every notice, from every channel, is decided here.

``notify(session, event, …)`` gathers what the pure decision needs (recent notices to
each address, languages, the screening of the inbound message), lets
``core.notices.decide`` choose the notices and their suppressions, and writes them in
the caller's transaction. Notices are content-free (invariant 3): a row names a kind, a
recipient, a ticket and a language; what the mail says is the template's job.

The same decision writes the rows for the ticket's chat channels and webhooks (issue
24): this module finds which channels a ticket has (its account's, its teams') and the
ticket's system fields, as plain values; nothing is read when none are configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from mailgate.core import chat, notices
from mailgate.core.notices import Event, NoticeContext
from mailgate.core.screening import Screening
from mailgate.core.settings import Settings
from mailgate.core.states import NoticeState
from mailgate.core.statuses import is_closed
from mailgate.db.models import (
    Agent,
    Customer,
    Notice,
    Team,
    Ticket,
    TicketDepartment,
    TicketHelper,
    TicketMessage,
)
from mailgate.tickets import _outbox
from mailgate.tickets.notice_counts import recent_and_written, serialize_per_address


def notify(
    session: Session,
    event: Event,
    *,
    settings: Settings,
    now: datetime,
    ticket: Ticket | None = None,
    screening: Screening | None = None,
    language: str = "",
    supplier_language: str = "",
    suppress: str = "",
    inbound_id: int | None = None,
    detail: Mapping[str, str] | None = None,
) -> list[Notice]:
    """Decide the notices ``event`` produces and write them; returns the rows written.

    ``language`` is the customer side's language when the caller knows better than the
    ticket (a sign-in link, an intake refusal); ``suppress`` is a reason the caller
    already has to send nothing, kept on the rows like any other; ``supplier_language``
    is the language of a supplier's notices (``supplier_message``)."""
    people = () if event.webhooks_only else notices.recipients(event)
    told = ticket is not None and not event.webhooks_only
    channels = ticket_channels(session, ticket, settings) if told and ticket else ()
    webhooks = settings.webhooks if ticket is not None else ()
    if not people and not channels and not webhooks:
        return []  # nobody to decide for: no statement spent on it
    keys = notices.rate_keys(people)
    # A channel's count is serialized as an address's is, under its own key.
    serialize_per_address(session, [*keys, *(notices.chat_key(c.name) for c in channels)])
    base = NoticeContext(
        now=now,
        automatic=screening.automatic if screening else False,
        answerable=screening.answerable if screening else True,
        screening_reason=screening.reason if screening else "",
        customer_language=language or (_customer_language(session, ticket) if ticket else ""),
        ticket_language=ticket.language if ticket else "",
        supplier_language=supplier_language,
        default_language=settings.defaults.language,
        max_per_hour=settings.outbound.max_per_hour_per_address,
        own_addresses=(*settings.smtp.addresses, settings.outbound.from_address),
        suppress=suppress,
        chat=channels,
        chat_max_per_hour=settings.outbound.chat_max_per_hour,
        webhooks=webhooks,
        ticket_facts=ticket_facts(session, ticket) if webhooks and ticket else {},
        status_closed=is_closed(event.status, settings.tickets),
    )
    # The rows the decision may write are named before the recent counts are known (the
    # counts only suppress, they add or rename no row): one statement reads both the
    # counts and which of those rows an earlier run wrote.
    causes = {spec.cause for spec in notices.decide(event, base)}
    recent, written = recent_and_written(
        session, people, now=now, channels=[c.name for c in channels], causes=causes
    )
    return _outbox.write(
        session,
        notices.decide(event, replace(base, recent=recent)),
        ticket=ticket,
        settings=settings,
        now=now,
        inbound_id=inbound_id,
        detail=detail,
        checked=(causes, written),
    )


def ticket_channels(
    session: Session, ticket: Ticket, settings: Settings
) -> tuple[chat.ChatChannel, ...]:
    """The chat channels told of ``ticket``: its customer account's, then those of its
    team and of the teams it is a department of. A side none of whose owners has a
    channel costs no statement."""
    configured = chat.channels(settings).values()
    accounts = [c for c in configured if c.owner_kind == chat.CUSTOMER]
    teams = [c for c in configured if c.owner_kind == chat.TEAM]
    out: list[chat.ChatChannel] = []
    if accounts and ticket.customer_id is not None:
        customer = session.get(Customer, ticket.customer_id)  # the session has it, mostly
        out += [c for c in accounts if customer is not None and c.owner == customer.name]
    if teams:
        departments = select(TicketDepartment.team_id).where(
            TicketDepartment.ticket_id == ticket.id
        )
        names = set(
            session.scalars(
                select(Team.name).where(or_(Team.id == ticket.team_id, Team.id.in_(departments)))
            )
        )
        out += [c for c in teams if c.owner in names]
    return tuple(out)


def ticket_facts(session: Session, ticket: Ticket) -> dict[str, Any]:
    """The system fields a webhook row carries: never a subject, a text or a name."""
    team = session.get(Team, ticket.team_id) if ticket.team_id is not None else None
    return {
        "status": ticket.status,
        "priority": ticket.priority,
        "type": ticket.type,
        "team": team.name if team is not None else "",
        # null when nobody owns it: a receiver reads a number or nothing, never "".
        "assignee_id": ticket.assignee_id,
    }


def tell_webhooks(
    session: Session,
    ticket: Ticket,
    kind: str,
    cause: str,
    *,
    settings: Settings,
    now: datetime,
    **values: Any,
) -> list[Notice]:
    """Write the webhook rows of a fact that no notice to a person names (the status an
    agent's reply or a trigger sets, a customer's reply ending a wait, a target met
    late): the door is ``notify``, with an event only webhooks hear. Nothing is read
    when no webhook is configured."""
    if not settings.webhooks:
        return []
    event = ticket_event(session, ticket, kind, cause, webhooks_only=True, **values)
    return notify(session, event, ticket=ticket, settings=settings, now=now)


def mark_bounced(session: Session, message_ids: Iterable[str], reason: str) -> list[int]:
    """Mark our notices a bounce reports on as ``bounced``; returns their ids."""
    ids = [m for m in message_ids if m]
    if not ids:
        return []
    found = list(session.scalars(select(Notice.id).where(Notice.message_id.in_(ids))))
    if found:
        session.execute(
            update(Notice)
            .where(Notice.id.in_(found))
            .values(state=NoticeState.BOUNCED, last_error=reason[:2000], next_attempt_at=None)
        )
    return found


def assignee_email(session: Session, ticket: Ticket) -> str:
    """The address of the ticket's assignee, if one is set and still active."""
    if ticket.assignee_id is None:
        return ""
    agent = session.get(Agent, ticket.assignee_id)
    return agent.email if agent is not None and agent.active else ""


def requester_message_id(session: Session, ticket: Ticket) -> str:
    """The Message-ID of the requester's own newest message, for ``In-Reply-To`` of a
    notice to them (their client threads it); never another sender's."""
    value = session.scalar(
        select(TicketMessage.message_id)
        .where(
            TicketMessage.ticket_id == ticket.id,
            TicketMessage.direction == "inbound",
            TicketMessage.author_email == ticket.requester,
            TicketMessage.message_id != "",
        )
        .order_by(TicketMessage.id.desc())
        .limit(1)
    )
    return value or ""


def about_message(
    session: Session,
    ticket: Ticket,
    kind: str,
    cause: str,
    *,
    author: str,
    message_id: str,
    inbound_id: int | None,
    settings: Settings,
    now: datetime,
    screening: Screening | None = None,
) -> list[Notice]:
    """Notify what a customer's message caused (``kind``: a new ticket, a reply, mail to
    a closed ticket): its author's own Message-ID is echoed to them only, and the inbound
    message's screening decides what may answer it."""
    event = ticket_event(
        session,
        ticket,
        kind,
        cause,
        sender=author,
        in_reply_to=message_id,
        in_reply_to_author=author,
        status=ticket.status,
    )
    told = (notices.CUSTOMER_REPLY, notices.SUPPLIER_REPLY)
    if kind in told and settings.tickets.notify_helpers and ticket.helpers_count:
        event = replace(event, helpers=_helpers(session, ticket))
    return notify(
        session,
        event,
        ticket=ticket,
        settings=settings,
        now=now,
        screening=screening,
        inbound_id=inbound_id,
    )


def tell_requester(
    session: Session, ticket: Ticket, kind: str, cause: str, *, settings: Settings, now: datetime
) -> list[Notice]:
    """Notify the requester of an agent's change (``kind``: a reply or a status change),
    threaded to their own newest message, with the status the ticket has now."""
    event = ticket_event(
        session,
        ticket,
        kind,
        cause,
        in_reply_to=requester_message_id(session, ticket),
        in_reply_to_author=ticket.requester,
        status=ticket.status,
    )
    return notify(session, event, ticket=ticket, settings=settings, now=now)


def _helpers(session: Session, ticket: Ticket) -> tuple[str, ...]:
    """The active helpers of ``ticket``, by email."""
    return tuple(
        session.scalars(
            select(Agent.email)
            .join(TicketHelper, TicketHelper.agent_id == Agent.id)
            .where(TicketHelper.ticket_id == ticket.id, Agent.active)
            .order_by(Agent.email)
        )
    )


def ticket_event(session: Session, ticket: Ticket, kind: str, cause: str, **values: Any) -> Event:
    """An ``Event`` of ``kind`` about ``ticket``, with its requester and assignee filled in."""
    assert ticket.number is not None
    return Event(
        kind=kind,
        cause=cause,
        ticket_number=ticket.number,
        requester=ticket.requester,
        assignee=assignee_email(session, ticket),
        **values,
    )


def _customer_language(session: Session, ticket: Ticket) -> str:
    if ticket.customer_id is None:
        return ""
    customer = session.get(Customer, ticket.customer_id)
    return customer.language if customer is not None else ""
