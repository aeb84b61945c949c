"""The agent's ticket page: helpers, departments and suppliers (issue 22), the same
write-side functions as ``tickets helpers`` / ``departments`` / ``suppliers`` and
``PATCH /api/tickets``. Each form adds one (``add``) and removes the ticked (``remove``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mailgate.tickets import involvement, suppliers
from mailgate.web.agent_actions import AgentP, Csrf, Short, Ticked, act

router = APIRouter(include_in_schema=False)


def _route(what: str, change: Callable[..., Any]) -> None:
    """POST /agent/tickets/{number}/``what``: ``change`` with the one added, the ticked removed."""

    def members(
        request: Request, number: int, principal: AgentP, add: Short = "", remove: Ticked = None
    ) -> Response:
        return act(
            request,
            principal,
            number,
            lambda s, p, a: change(
                s,
                settings=p.settings,
                number=number,
                actor=a,
                add=[add] if add else [],
                remove=remove or (),
                at=p.now(),
            ),
        )

    router.post(f"/agent/tickets/{{number:int}}/{what}", dependencies=[Csrf], name=what)(members)


_route("helpers", involvement.set_helpers)
_route("departments", involvement.set_departments)
_route("suppliers", suppliers.set_suppliers)
