"""The agent's ticket page: helpers and departments (issue 22), the same write-side
functions as ``tickets helpers`` / ``tickets departments`` and ``PATCH /api/tickets``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mailgate.tickets import involvement
from mailgate.web.agent_actions import AgentP, Csrf, Short, Ticked, act

router = APIRouter(include_in_schema=False)


@router.post("/agent/tickets/{number:int}/helpers", dependencies=[Csrf])
def helpers(
    request: Request, number: int, principal: AgentP, add: Short = "", remove: Ticked = None
) -> Response:
    """``add``: an agent chosen to help; ``remove``: the ticked helpers."""
    return act(
        request,
        principal,
        number,
        lambda s, p, a: involvement.set_helpers(
            s,
            settings=p.settings,
            number=number,
            actor=a,
            add=[add] if add else [],
            remove=remove or (),
            at=p.now(),
        ),
    )


@router.post("/agent/tickets/{number:int}/departments", dependencies=[Csrf])
def departments(
    request: Request, number: int, principal: AgentP, add: Short = "", remove: Ticked = None
) -> Response:
    """``add``: a team to involve; ``remove``: the ticked departments."""
    return act(
        request,
        principal,
        number,
        lambda s, p, a: involvement.set_departments(
            s,
            settings=p.settings,
            number=number,
            actor=a,
            add=[add] if add else [],
            remove=remove or (),
            at=p.now(),
        ),
    )
