"""Opening a ticket: the one function every channel calls (mail, portal, API, CLI).

Whoever opens it, a new ticket gets the same treatment: the intake policy (unless staff
open it for a customer), the customer account, the default team and status, the first
message, the rules, the assignment, and one decision on its notices (acknowledgement to
the requester, "assigned" to the agent) with screening and the rate limit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from mailgate.core import notices, rules
from mailgate.core import statuses as status_machine
from mailgate.core.attachments import Attachment
from mailgate.core.directory import CustomerView, is_support_address
from mailgate.core.errors import ActionRefused, InvalidValue
from mailgate.core.intake_policy import admits
from mailgate.core.screening import Screening
from mailgate.core.settings import Settings
from mailgate.db.directory import customer_of
from mailgate.db.models import (
    Agent,
    HistoryEvent,
    Notice,
    Participant,
    Team,
    Ticket,
    TicketLink,
    TicketMessage,
)
from mailgate.tickets import triggers
from mailgate.tickets.files import typed_files
from mailgate.tickets.messages import Incoming, clean_body, store_message
from mailgate.tickets.notify import about_message
from mailgate.tickets.records import history, insert_pending
from mailgate.tickets.triage import Chosen, route_new_ticket, team_and_agents

MAX_SUBJECT_CHARS = 500
_BLANKS = re.compile(r"[\x00-\x20]+")
# One bare address, as a person types it: no display name, no spaces or controls, no
# second "@", a dot in the domain. The API's schema states the same (api_models.EMAIL).
TYPED_ADDRESS = r'[^@\x00-\x20\x7f<>,;"]+@[^@\x00-\x20\x7f<>,;"]+\.[^@\x00-\x20\x7f<>,;".]+'
_TYPED_ADDRESS = re.compile(TYPED_ADDRESS)


@dataclass(frozen=True)
class Link:
    """A link the new ticket starts with: ``kind`` from it to ticket ``number``, and
    ``reverse`` (if any) back."""

    number: int
    kind: str
    reverse: str = ""
    reason: str = ""


@dataclass(frozen=True)
class NewTicket:
    """A ticket to open, as any channel describes it."""

    requester: str
    subject: str
    message: Incoming
    requester_name: str = ""
    type: str | None = None  # None: the default; rules may still set it
    priority: str | None = None
    actor: str = ""  # who opened it, for the history; default the requester
    cc: tuple[str, ...] = ()  # others addressed on the first message
    language: str = ""  # the message's language, when the account names none
    tags: tuple[str, ...] = ()
    # What the rules may test; built from the message when not given (mail gives headers).
    facts: rules.Facts | None = None
    link: Link | None = None
    history_detail: tuple[tuple[str, str], ...] = ()  # more words for the "created" event
    by_staff: bool = False  # an agent opens it for the customer: intake.policy does not apply
    # Staff's choices (tickets create --team/--assignee): they win over rules and strategy.
    team: str | None = None
    assignee: str | None = None
    accepted_by: str = ""  # an operator let a refused message in (`mailgate inbound accept`)


@dataclass(frozen=True)
class Opened:
    """A ticket just opened: the ticket, its first message and the notices it caused."""

    ticket: Ticket
    message: TicketMessage
    notices: tuple[Notice, ...]


def typed_subject(subject: str) -> str:
    """A subject typed in the portal, the API or the CLI: runs of ASCII spaces and controls
    (folded headers, tabs) become one space; empty or overlong is refused."""
    subject = " ".join(part for part in _BLANKS.split(subject) if part)
    if not subject:
        raise InvalidValue("the subject is empty")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise InvalidValue("the subject is longer than %(max)s characters", max=MAX_SUBJECT_CHARS)
    return subject


def intake_verdict(
    session: Session, settings: Settings, requester: str
) -> tuple[CustomerView | None, str]:
    """The requester's customer account, and why ``intake.policy`` refuses them (empty
    when it admits them)."""
    customer = customer_of(session, requester)
    verdict = admits(settings.intake.policy, requester, customer)
    return customer, "" if verdict.allowed else verdict.reason


def _policy_refusal(policy: str) -> ActionRefused:
    """What a customer is told when intake.policy refuses them in the portal or the API
    (``anyone`` refuses no one)."""
    if policy == "admins":
        return ActionRefused("Only the administrators of a customer account can open tickets.")
    return ActionRefused("Only addresses of our customer accounts can open tickets.")


def may_open(session: Session, settings: Settings, email: str) -> str | None:
    """None when ``email`` may open tickets itself, else the reason in a customer's words."""
    _, refused = intake_verdict(session, settings, email.strip().lower())
    return str(_policy_refusal(settings.intake.policy)) if refused else None


def open_ticket(
    session: Session,
    new: NewTicket,
    *,
    settings: Settings,
    at: datetime,
    cause: str = "",
    screening: Screening | None = None,
) -> Opened:
    """Open ``new`` and decide its notices; returns the ticket (numbered), its first
    message and its notices.

    Refused with ``ActionRefused`` when intake.policy does not admit the requester (staff
    and an operator's acceptance pass), ``InvalidValue`` for an unknown type or priority.
    ``cause`` names the notices (default: the ticket); mail passes its inbound row's."""
    requester = new.requester.strip().lower()
    type_ = new.type or settings.defaults.type
    priority = new.priority or settings.defaults.priority
    if type_ not in settings.tickets.types:
        known = ", ".join(settings.tickets.types)
        raise InvalidValue("unknown type %(type)r (known: %(known)s)", type=type_, known=known)
    if priority not in settings.tickets.priorities:
        known = ", ".join(settings.tickets.priorities)
        raise InvalidValue(
            "unknown priority %(priority)r (known: %(known)s)", priority=priority, known=known
        )
    customer, refused = intake_verdict(session, settings, requester)
    if refused and not (new.by_staff or new.accepted_by):
        raise _policy_refusal(settings.intake.policy)
    team = _default_team(session, settings) if new.team is None else _team(session, new.team)
    chosen = Chosen(
        team=new.team is not None,
        assignee=_active_agent(session, new.assignee) if new.assignee else "",
        by=new.actor or requester,
    )
    ticket = _insert_numbered(
        session,
        customer_id=customer.id if customer else None,
        requester=requester,
        requester_name=new.requester_name.strip()[:255],
        subject=new.subject,
        type=type_,
        priority=priority,
        status=status_machine.new_ticket_status(settings.tickets),
        team_id=team.id if team is not None else None,
        language=(customer.language if customer and customer.language else "")
        or new.language
        or settings.defaults.language,
        tags=list(dict.fromkeys(new.tags)),
        created_at=at,
        updated_at=at,
    )
    # Everything below goes in with the message's flush, one statement per table: the
    # queries the rules and the assignment make must not flush it piecemeal first.
    with session.no_autoflush:
        _add_participants(session, ticket, new.cc, settings)
        actor = new.actor or requester
        created = {"via": new.message.via, **dict(new.history_detail)}
        history(session, ticket, at, actor, "created", detail=created)
        if new.link is not None:
            _link_at_opening(session, ticket, new.link, actor, at)
        if new.accepted_by:
            history(session, ticket, at, new.accepted_by, "accepted", detail={"policy": "override"})
        # Type, priority, team, tags by rule; then the assignee (DESIGN.md §5).
        route_new_ticket(
            session,
            ticket,
            facts=new.facts or _typed_facts(new, ticket, customer),
            customer=customer,
            settings=settings,
            at=at,
            chosen=chosen,
        )
    # Its history (created, the rules, the assignment): one INSERT, not one per event.
    insert_pending(session, HistoryEvent)
    message = store_message(session, ticket, new.message, at=at, after_close=False)
    if settings.triggers:
        # After the rules and the assignment, before the acknowledgement (it names the
        # status the triggers leave). Not when none are configured: no statement spent.
        for event in ("created", "assigned") if ticket.assignee_id else ("created",):
            triggers.fire(session, ticket, event, settings=settings, actor=None, at=at)
    written = about_message(
        session,
        ticket,
        notices.NEW_TICKET,
        cause or f"opened:{ticket.id}",
        author=requester,
        message_id=new.message.message_id,
        inbound_id=message.inbound_id,
        settings=settings,
        now=at,
        screening=screening,
    )
    return Opened(ticket, message, tuple(written))


def _insert_numbered(session: Session, **values: Any) -> Ticket:
    """Insert a ticket whose number is its id, both chosen by the INSERT itself: one
    statement, where a flush and then ``UPDATE … SET number`` took two.

    PostgreSQL: the id sequence's next value, drawn once (a CTE calling a volatile
    function is evaluated once, however often it is referred to), so numbers are unique
    whatever runs at the same time, exactly as the column default made them. SQLite: one
    more than the largest id, which is what SQLite itself gives a rowid; the statement
    holds the database's only write lock, so no other writer can take the same value."""
    statement = _numbered_insert(session.get_bind().dialect.name, tuple(values))
    return session.scalars(statement, values).one()


@functools.lru_cache(maxsize=8)
def _numbered_insert(dialect: str, columns: tuple[str, ...]) -> ReturningInsert[Ticket]:
    """``_insert_numbered``'s statement, built once per dialect and set of columns and
    given each ticket's values as parameters: built each time with the values in it,
    it cost a bulk import a fifth of a millisecond per ticket."""
    if dialect == "postgresql":
        sequence = func.pg_get_serial_sequence(Ticket.__tablename__, "id")
        drawn = select(func.nextval(sequence).label("id")).cte("next_ticket")
        value = select(drawn.c.id).scalar_subquery()
        statement = insert(Ticket).add_cte(drawn)
    else:
        value = select(func.coalesce(func.max(Ticket.id), 0) + 1).scalar_subquery()
        statement = insert(Ticket)
    named: dict[str, BindParameter[Any]] = {column: bindparam(column) for column in columns}
    return statement.values(id=value, number=value, **named).returning(Ticket)


def _default_team(session: Session, settings: Settings) -> Team | None:
    """The default team's row, read once per transaction (a bulk import opens a hundred
    tickets in one), with the agents the assignment reads next (``team_and_agents``).
    Held in the session: assignment reads it next, without a query."""
    key = f"default_team:{settings.defaults.team}"
    if key not in session.info:
        session.info[key] = team_and_agents(session, settings.defaults.team)
    team_row: Team | None = session.info[key]
    return team_row


def _team(session: Session, name: str) -> Team:
    team = session.scalar(select(Team).where(Team.name == name))
    if team is None:
        raise InvalidValue("no team %(team)r", team=name)
    return team


def _active_agent(session: Session, email: str) -> str:
    address = email.strip().lower()
    agent = session.scalar(select(Agent).where(Agent.email == address))
    if agent is None or not agent.active:
        raise InvalidValue("no active agent %(agent)r", agent=email)
    return address


def _add_participants(
    session: Session, ticket: Ticket, cc: tuple[str, ...], settings: Settings
) -> None:
    people = {ticket.requester: "requester"}
    for address in cc:
        email = address.lower()
        if not is_support_address(email, settings.smtp.addresses):
            people.setdefault(email, "cc")
    for email, role in people.items():
        session.add(Participant(ticket_id=ticket.id, email=email, role=role))


def _link_at_opening(
    session: Session, ticket: Ticket, link: Link, actor: str, at: datetime
) -> None:
    other = session.scalar(select(Ticket).where(Ticket.number == link.number))
    if other is None:
        return
    session.add(TicketLink(ticket_id=ticket.id, other_ticket_id=other.id, kind=link.kind))
    if link.reverse:
        session.add(TicketLink(ticket_id=other.id, other_ticket_id=ticket.id, kind=link.reverse))
    if link.reason:  # found by the system (a stranger's subject tag, a forged sender)
        detail, actor = {"reason": link.reason}, "system"
    else:
        detail = {"kind": link.kind}
    history(session, ticket, at, actor, "linked", new=str(link.number), detail=detail)


def _typed_facts(new: NewTicket, ticket: Ticket, customer: CustomerView | None) -> rules.Facts:
    """What the rules may test on a ticket opened without mail: no headers, no
    recipients; the subject, the text, the requester and the account are the same."""
    return rules.Facts(
        sender=ticket.requester,
        recipients=(),
        subject=ticket.subject,
        body=new.message.text,
        headers=(),
        customer=customer.name if customer else "",
        language=ticket.language,
        has_attachment=any(not a.inline for a in new.message.attachments),
    )


def typed_ticket(
    *,
    requester: str,
    subject: str,
    body: str,
    via: str,
    requester_name: str = "",
    type_: str | None = None,
    priority: str | None = None,
    actor: str = "",
    follow_up_of: int | None = None,
    by_staff: bool = False,
    team: str | None = None,
    assignee: str | None = None,
    attachments: Sequence[Attachment] = (),
    settings: Settings | None = None,
) -> NewTicket:
    """A ticket typed in the portal, the API or the CLI, its subject, text and files
    checked.

    ``follow_up_of`` links it to an earlier (typically closed) ticket, both ways.
    ``attachments`` go with the first message, held to ``settings``' limits
    (``files.typed_files``): settings are needed with files."""
    requester = requester.strip().lower()
    if not _TYPED_ADDRESS.fullmatch(requester) or len(requester) > 320:
        raise InvalidValue(
            "the requester %(requester)r is not an email address", requester=requester[:80]
        )
    text = clean_body(body)
    files: tuple[Attachment, ...] = ()
    if attachments:
        if settings is None:
            raise TypeError("typed_ticket: files are checked against settings; none given")
        files = typed_files(settings, attachments)
    message = Incoming(
        author_email=requester, author_name=requester_name, text=text, via=via, attachments=files
    )
    return NewTicket(
        requester=requester,
        subject=typed_subject(subject),
        message=message,
        requester_name=requester_name,
        type=type_,
        priority=priority,
        actor=actor,
        link=Link(follow_up_of, "follows", "followed by") if follow_up_of is not None else None,
        by_staff=by_staff,
        team=team,
        assignee=assignee,
    )
