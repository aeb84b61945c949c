"""The agent's actions on a ticket: status, assignee, team, priority, type, tags, dates,
close, link, merge (a reply and a note, with their files, are ``agent_messages``).

Every action is a form post (with the CSRF token) that calls one write-side function
(``tickets``), the same one the CLI and the API call, then returns to the ticket; a
refusal or a wrong value comes back as a page saying why, with the way back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailgate.core import sla
from mailgate.core.attachments import FileRefused
from mailgate.core.errors import ActionRefused, InvalidValue, NotFound
from mailgate.core.statuses import is_closed
from mailgate.db.models import Ticket
from mailgate.tickets import changes, fields
from mailgate.tickets import merge as merges
from mailgate.tickets.activities import log_activity
from mailgate.tickets.actors import Actor
from mailgate.web.auth import Principal, agent_only, require_csrf
from mailgate.web.context import Portal, portal
from mailgate.web.i18n import N_
from mailgate.web.pages import DONE, error_text, render, say

router = APIRouter(include_in_schema=False)
Csrf = Depends(require_csrf)
AgentP = Annotated[Principal, Depends(agent_only)]
Text = Annotated[str, Form(max_length=200_000)]
Short = Annotated[str, Form(max_length=500)]
# The tags ticked for removal: each one checked by the write side like any tag.
Ticked = Annotated[list[str] | None, Form(max_length=200)]
MAX_NUMBER = 2**53

Action = Callable[[Session, Portal, Actor], Any]


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def act(
    request: Request,
    principal: Principal,
    number: int,
    action: Action,
    *,
    then: int = 0,
    refused: Callable[[FileRefused], Response] | None = None,
) -> Response:
    """Run ``action`` in one transaction, then go to ticket ``then`` (default: this one).
    A file the limits refuse is answered by ``refused`` when given (its form, again)."""
    if not 0 < number <= MAX_NUMBER:
        raise HTTPException(404, N_("There is no such ticket."))
    p = portal(request)
    actor = Actor(principal.email, principal.email, principal.name, principal.agent_id)
    back = back_to_ticket(request, number)
    try:
        with p.store.transaction() as session:
            action(session, p, actor)
    except NotFound:
        raise HTTPException(404, N_("There is no such ticket.")) from None
    except ActionRefused as exc:
        message = error_text(request, exc)
        return render(
            request, "error.html", 409, title=N_("Not possible"), message=message, action=back
        )
    except InvalidValue as exc:
        if refused is not None and isinstance(exc, FileRefused):
            return refused(exc)
        message = error_text(request, exc)
        return render(
            request, "error.html", 400, title=N_("Please check"), message=message, action=back
        )
    # A word to say it was done (pages.DONE), named by the action: POST-redirect-GET kept.
    done = request.url.path.rsplit("/", 1)[-1]
    return _redirect(f"/tickets/{then or number}" + (f"?done={done}" if done in DONE else ""))


def back_to_ticket(request: Request, number: int) -> tuple[str, str]:
    """An error page's way back to ticket ``number``: its address and words."""
    return f"/tickets/{number}", say(request, N_("Back to ticket #%(number)s"), number=number)


@router.post("/agent/tickets/{number:int}/status", dependencies=[Csrf])
def status(request: Request, number: int, principal: AgentP, status: Short) -> Response:
    return act(
        request,
        principal,
        number,
        lambda s, p, a: changes.change_status(
            s, settings=p.settings, number=number, actor=a, status=status, at=p.now()
        ),
    )


@router.post("/agent/tickets/{number:int}/assign", dependencies=[Csrf])
def assign(request: Request, number: int, principal: AgentP, assignee: Short = "") -> Response:
    return act(
        request,
        principal,
        number,
        lambda s, p, a: changes.assign(
            s, settings=p.settings, number=number, actor=a, assignee=assignee or None, at=p.now()
        ),
    )


@router.post("/agent/tickets/{number:int}/team", dependencies=[Csrf])
def team(request: Request, number: int, principal: AgentP, team: Short = "") -> Response:
    return act(
        request,
        principal,
        number,
        lambda s, p, a: changes.set_team(
            s, settings=p.settings, number=number, actor=a, team=team or None, at=p.now()
        ),
    )


@router.post("/agent/tickets/{number:int}/priority", dependencies=[Csrf])
def priority(request: Request, number: int, principal: AgentP, priority: Short) -> Response:
    return act(
        request,
        principal,
        number,
        lambda s, p, a: fields.set_priority(
            s, settings=p.settings, number=number, actor=a, priority=priority, at=p.now()
        ),
    )


@router.post("/agent/tickets/{number:int}/type", dependencies=[Csrf])
def type_(request: Request, number: int, principal: AgentP, type: Short) -> Response:
    return act(
        request,
        principal,
        number,
        lambda s, p, a: fields.set_type(
            s, settings=p.settings, number=number, actor=a, type_=type, at=p.now()
        ),
    )


@router.post("/agent/tickets/{number:int}/tags", dependencies=[Csrf])
def tags(
    request: Request, number: int, principal: AgentP, add: Short = "", remove: Ticked = None
) -> Response:
    """``add``: new tags, separated by spaces or commas (how people type a list);
    ``remove``: the ticked tags. One change, one history event."""
    added = [t for t in re.split(r"[\s,]+", add) if t]
    return act(
        request,
        principal,
        number,
        lambda s, p, a: fields.set_tags(
            s,
            settings=p.settings,
            number=number,
            actor=a,
            add=added,
            remove=remove or (),
            at=p.now(),
        ),
    )


@router.post("/agent/tickets/{number:int}/close", dependencies=[Csrf])
def close(request: Request, number: int, principal: AgentP, confirm: Short = "") -> Response:
    """Close for good, in two steps: the first post asks (closing cannot be undone); the
    second, ``confirm=yes``, closes. A ticket closed already is refused at once."""
    if not 0 < number <= MAX_NUMBER:
        raise HTTPException(404, N_("There is no such ticket."))
    if confirm != "yes":
        p = portal(request)
        with p.store.transaction() as session:
            found = session.scalar(select(Ticket).where(Ticket.number == number))
            if found is None:
                raise HTTPException(404, N_("There is no such ticket."))
            brief = _brief(found)
        if not is_closed(brief["status"], p.settings.tickets):
            return render(request, "agent_close.html", t=brief)
    return act(
        request,
        principal,
        number,
        lambda s, p, a: changes.close(s, settings=p.settings, number=number, actor=a, at=p.now()),
    )


@router.post("/agent/tickets/{number:int}/dates", dependencies=[Csrf])
def dates(
    request: Request,
    number: int,
    principal: AgentP,
    follow_up: Short = "",
    action_required: Short = "",
) -> Response:
    """The follow-up and action-required dates, in the CLI's words (``2d``, ``4h``,
    ``2026-01-31``, ``2026-01-31T14:00``, ``none`` clears); a blank field is left as is."""

    def change(s: Session, p: Portal, a: Actor) -> Any:
        now = p.now()
        given = {"follow_up": follow_up, "action_required": action_required}
        when = {name: sla.parse_when(text, now) for name, text in given.items() if text.strip()}
        return changes.set_dates(s, settings=p.settings, number=number, actor=a, dates=when, at=now)

    return act(request, principal, number, change)


@router.post("/agent/tickets/{number:int}/link", dependencies=[Csrf])
def link(
    request: Request, number: int, principal: AgentP, other: Short, kind: Short = "related"
) -> Response:
    other_number = other.strip().lstrip("#")

    def change(s: Session, p: Portal, a: Actor) -> Any:
        if not other_number.isdigit() or int(other_number) > MAX_NUMBER:
            raise InvalidValue("Give the number of the ticket to link to.")
        changes.link(
            s,
            number=number,
            other_number=int(other_number),
            actor=a,
            at=p.now(),
            kind=kind,
            settings=p.settings,
        )

    return act(request, principal, number, change)


@router.post("/agent/tickets/{number:int}/activity", dependencies=[Csrf])
def activity(
    request: Request, number: int, principal: AgentP, type: Short, minutes: Short, text: Text = ""
) -> Response:
    """Log time spent on the ticket (issue 22): a type, minutes, an internal text."""

    def change(s: Session, p: Portal, a: Actor) -> Any:
        if not minutes.strip().isdigit():
            raise InvalidValue("Give the time spent as a whole number of minutes.")
        log_activity(
            s,
            settings=p.settings,
            number=number,
            actor=a,
            type_=type,
            minutes=int(minutes),
            text=text,
            at=p.now(),
        )

    return act(request, principal, number, change)


@router.post("/agent/tickets/{number:int}/merge", dependencies=[Csrf])
def merge(
    request: Request, number: int, principal: AgentP, into: Short, confirm: Short = ""
) -> Response:
    """Merge this ticket into ticket ``into``, in two steps: the first post shows both
    tickets and what the merge does (it cannot be undone); the second, ``confirm=yes``,
    merges and goes to the ticket the conversation continues on."""
    if not 0 < number <= MAX_NUMBER:
        raise HTTPException(404, N_("There is no such ticket."))
    given = into.strip().lstrip("#")
    target = int(given) if re.fullmatch(r"[0-9]{1,16}", given) else 0
    if not 0 < target <= MAX_NUMBER or target == number:
        message = N_("Give the number of another ticket to merge into.")
        return _check_page(request, number, message)
    if confirm != "yes":
        with portal(request).store.transaction() as session:
            found = {
                t.number: _brief(t)
                for t in session.scalars(select(Ticket).where(Ticket.number.in_((number, target))))
            }
        if number not in found:
            raise HTTPException(404, N_("There is no such ticket."))
        if target not in found:
            message = say(
                request, N_("There is no ticket #%(number)s to merge into."), number=target
            )
            return _check_page(request, number, message)
        return render(request, "agent_merge.html", source=found[number], target=found[target])

    def change(s: Session, p: Portal, a: Actor) -> Any:
        return merges.merge(s, settings=p.settings, number=number, into=target, actor=a, at=p.now())

    return act(request, principal, number, change, then=target)


def _brief(ticket: Ticket) -> dict[str, Any]:
    """What the confirmation shows of a ticket."""
    return {
        "number": ticket.number,
        "subject": ticket.subject,
        "requester": ticket.requester,
        "status": ticket.status,
    }


def _check_page(request: Request, number: int, message: str) -> Response:
    """``message``: marked ``N_``, or put through ``say`` (words with values)."""
    back = back_to_ticket(request, number)
    return render(
        request, "error.html", 400, title=N_("Please check"), message=message, action=back
    )
