"""The agent portal's "New ticket" form: an agent opens a ticket for a customer.

The same write-side call as ``mailgate tickets create`` and ``POST /api/tickets`` with
an agent's token: intake.policy does not apply to staff, the rules and the assignment
do (a team or assignee chosen here wins over them), and the requester gets the usual
content-free acknowledgement.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailgate.core.errors import ActionRefused, InvalidValue
from mailgate.db.models import Agent, Team
from mailgate.tickets import opening
from mailgate.web.auth import Principal, agent_only, require_csrf
from mailgate.web.context import portal
from mailgate.web.pages import error_text, render

router = APIRouter(include_in_schema=False)
Csrf = Depends(require_csrf)
AgentP = Annotated[Principal, Depends(agent_only)]
Text = Annotated[str, Form(max_length=200_000)]
Short = Annotated[str, Form(max_length=500)]
_FIELDS = ("requester", "name", "subject", "body", "type", "priority", "team", "assignee")


def _form(request: Request, values: dict[str, str], status: int = 200, error: str = "") -> Response:
    p = portal(request)
    with p.store.transaction() as session:
        teams = list(session.scalars(select(Team.name).order_by(Team.name)))
        agents = list(
            session.scalars(select(Agent.email).where(Agent.active).order_by(Agent.email))
        )
    return render(
        request,
        "agent_ticket_new.html",
        status,
        values=values,
        error=error,
        teams=teams,
        agents=agents,
        defaults=p.settings.defaults,
    )


@router.get("/agent/new")
def new_ticket_form(request: Request, principal: AgentP, requester: str = "") -> Response:
    """The empty form; ``requester`` fills in the customer (a link from their ticket)."""
    return _form(request, {"requester": requester[:320]})


@router.post("/agent/new", dependencies=[Csrf])
def new_ticket(
    request: Request,
    principal: AgentP,
    requester: Short,
    subject: Short,
    body: Text,
    name: Short = "",
    type: Short = "",
    priority: Short = "",
    team: Short = "",
    assignee: Short = "",
) -> Response:
    """Open the ticket and go to it; a wrong value comes back on the form, nothing typed lost."""
    typed = (requester, name, subject, body, type, priority, team, assignee)
    values = dict(zip(_FIELDS, typed, strict=True))
    p = portal(request)
    try:
        with p.store.transaction() as session:
            new = opening.typed_ticket(
                requester=requester,
                requester_name=name,
                subject=subject,
                body=body,
                via="portal",
                type_=type or None,
                priority=priority or None,
                actor=principal.email,
                by_staff=True,
                team=team or None,
                assignee=assignee or None,
            )
            ticket = opening.open_ticket(session, new, settings=p.settings, at=p.now()).ticket
            number = ticket.number
    except (InvalidValue, ActionRefused) as exc:
        return _form(request, values, 400, error_text(request, exc))
    return RedirectResponse(f"/tickets/{number}?done=new", status_code=303)
