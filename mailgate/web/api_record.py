"""The JSON API's calls on a ticket's record (issue 22): time logged on it, links to
other tickets and merging it into another, each the write-side function the CLI and
the agent portal call."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from starlette.requests import Request

from mailgate.core.errors import ActionRefused, InvalidValue, NotFound
from mailgate.db import queries
from mailgate.tickets import changes
from mailgate.tickets.activities import log_activity
from mailgate.tickets.merge import merge
from mailgate.web.api import (
    BAD,
    NOT_FOUND,
    REFUSED,
    UNAUTHORIZED,
    Integration,
    Number,
    errors,
    summary,
)
from mailgate.web.api_models import (
    ActivityIn,
    ActivityOut,
    ErrorOut,
    LinkIn,
    LinkOut,
    MergeIn,
    TicketOut,
)
from mailgate.web.context import portal

router = APIRouter(prefix="/api", tags=["tickets"], responses=UNAUTHORIZED)


@router.post(
    "/tickets/{number}/activities",
    status_code=201,
    response_model=ActivityOut,
    responses={**NOT_FOUND, **BAD, **REFUSED},
)
def post_activity(
    request: Request, caller: Integration, number: Number, body: ActivityIn
) -> dict[str, Any]:
    """Log ``minutes`` of work of a ``type`` from ``tickets.activity_types`` on the
    ticket, with an internal ``text``; refused on a closed ticket."""
    p = portal(request)
    try:
        with p.store.transaction() as session:
            activity = log_activity(
                session,
                settings=p.settings,
                number=number,
                actor=caller.actor,
                type_=body.type,
                minutes=body.minutes,
                text=body.text,
                at=p.now(),
            )
            return {
                "at": activity.created_at.isoformat(),
                "actor": activity.actor,
                "type": activity.type,
                "minutes": activity.minutes,
                "text": activity.text,
            }
    except (NotFound, ActionRefused, InvalidValue) as exc:
        raise errors(exc) from None


@router.post(
    "/tickets/{number}/links",
    status_code=201,
    response_model=list[LinkOut],
    responses={**NOT_FOUND, **BAD, 409: {"model": ErrorOut, "description": "A link to itself"}},
)
def post_link(request: Request, caller: Integration, number: Number, body: LinkIn) -> Any:
    """Link the ticket to ticket ``other`` as ``kind`` (a name of ``tickets.link_kinds``
    or its reverse; the other ticket gets the reverse); answers with the ticket's links.
    Allowed on closed tickets; linking twice changes nothing. 404 when either ticket
    does not exist; 409 for a link to itself."""
    if body.other == number:
        raise HTTPException(409, "a ticket cannot be linked to itself")
    p = portal(request)
    try:
        with p.store.transaction() as session:
            if not queries.ticket_exists(session, body.other):
                raise NotFound(f"no ticket #{body.other} to link to")
            changes.link(
                session,
                number=number,
                other_number=body.other,
                actor=caller.actor,
                at=p.now(),
                kind=body.kind,
                settings=p.settings,
            )
            return queries.show_ticket(session, number)["links"]
    except NotFound as exc:
        raise errors(exc) from None
    except InvalidValue as exc:
        raise HTTPException(400, str(exc)) from None


@router.post(
    "/tickets/{number}/merge",
    response_model=TicketOut,
    responses={
        404: {"model": ErrorOut, "description": "No such ticket (this one or `into`)"},
        409: {
            "model": ErrorOut,
            "description": "A ticket into itself, either ticket closed or merged, or two "
            "customer accounts",
        },
    },
)
def merge_ticket(
    request: Request, caller: Integration, number: Number, body: MergeIn
) -> dict[str, Any]:
    """Merge this ticket into ticket ``into``: its messages, attachments, participants
    and known Message-IDs move there, it is closed with a "merged into" link, and both
    requesters get the status notice. Returns ticket ``into``."""
    p = portal(request)
    try:
        with p.store.transaction() as session:
            merge(
                session,
                settings=p.settings,
                number=number,
                into=body.into,
                actor=caller.actor,
                at=p.now(),
            )
            return summary(session, body.into)
    except (NotFound, ActionRefused, InvalidValue) as exc:
        raise errors(exc) from None
