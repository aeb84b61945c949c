"""Status triggers on the write side: ``fire`` runs the ``[[triggers]]`` an event fires,
inside the transaction of the change that fired it, on the ticket that change locked.

Each write-side function that makes one of ``core.triggers.EVENTS`` happen calls
``fire`` once, after its own change. A trigger's changes go through the same functions
as anyone's (their checks, history events and notices), acting as ``trigger:<name>``;
being a trigger's, they fire nothing (no loops). A closed ticket fires nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mailgate.core import statuses as status_machine
from mailgate.core import triggers as rules_of
from mailgate.core.errors import ActionRefused, InvalidValue
from mailgate.core.settings import Settings, TriggerSetting
from mailgate.db.models import Agent, Customer, Team, Ticket
from mailgate.tickets.actors import Actor
from mailgate.tickets.records import history

# Events whose own notice already told the requester: a status a trigger sets then is
# named by that notice or seen in the portal; a second mail about one step is noise.
_REQUESTER_TOLD = frozenset({"created", "agent_replied", "customer_replied"})


def fire(
    session: Session,
    ticket: Ticket,
    event: str,
    *,
    settings: Settings,
    actor: Actor | None,
    at: datetime,
    from_status: str | None = None,
) -> None:
    """Run the triggers ``event`` fires on ``ticket`` (locked by the caller, changed).

    ``actor`` is who made the change (None: a customer or the system); ``from_status``
    the status before it (default: the status it has)."""
    if not settings.triggers or (actor is not None and actor.trigger):
        return
    if status_machine.is_closed(ticket.status, settings.tickets):
        return
    state = _state(session, ticket, from_status)
    for trigger in rules_of.firing(settings.triggers, event, state):
        if status_machine.is_closed(ticket.status, settings.tickets):
            return  # an earlier trigger closed it: closing is final, for triggers too
        _apply(session, ticket, trigger, event, settings=settings, at=at)


def _state(session: Session, ticket: Ticket, from_status: str | None) -> rules_of.TicketState:
    team = session.get(Team, ticket.team_id) if ticket.team_id else None
    customer = session.get(Customer, ticket.customer_id) if ticket.customer_id else None
    assignee = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    return rules_of.TicketState(
        status=ticket.status,
        from_status=from_status if from_status is not None else ticket.status,
        priority=ticket.priority,
        type=ticket.type,
        team=team.name if team else "",
        customer=customer.name if customer else "",
        assignee=assignee.email if assignee else "",
        tags=tuple(ticket.tags),
    )


def _apply(
    session: Session,
    ticket: Ticket,
    trigger: TriggerSetting,
    event: str,
    *,
    settings: Settings,
    at: datetime,
) -> None:
    """Make ``trigger``'s changes, all or none: one that cannot be made (an agent made
    inactive since start-up) is recorded and the change that fired it still stands."""
    # Imported here: these modules call ``fire`` themselves.
    from mailgate.tickets import changes, fields

    by = Actor(label=f"trigger:{trigger.name}", trigger=trigger.name)
    number = ticket.number
    assert number is not None  # a ticket is numbered when it is opened
    wanted = {k: v for k, v in trigger.set.items() if k in rules_of.ACTIONS}
    try:
        with session.begin_nested():
            history(session, ticket, at, by.label, "trigger", detail={"event": event})
            for key in ("team", "assignee"):
                if wanted.get(key) == rules_of.NONE:
                    wanted[key] = None
            if "tags" in wanted:
                added, removed = rules_of.tag_changes(wanted.pop("tags"))
                fields.set_tags(
                    session,
                    settings=settings,
                    number=number,
                    actor=by,
                    at=at,
                    add=added,
                    remove=removed,
                )
            status = wanted.pop("status", None)
            fields.apply_fields(
                session, settings=settings, number=number, actor=by, fields=wanted, at=at
            )
            if status is not None and status != ticket.status:
                if event in _REQUESTER_TOLD:
                    changes.enter_status(
                        session, ticket, status, settings=settings, actor=by, at=at
                    )
                else:
                    changes.change_status(
                        session, settings=settings, number=number, actor=by, status=status, at=at
                    )
    except (InvalidValue, ActionRefused) as exc:
        history(
            session,
            ticket,
            at,
            by.label,
            "trigger_failed",
            detail={"event": event, "reason": str(exc)[:500]},
        )
