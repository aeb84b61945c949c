"""The agents' Reports page (issue 22, item 7): what `mailgate stats` computes, for a
period, as tables and a server-drawn chart. Nothing leaves the server: the chart is an
inline SVG made here, with no script (the portal's Content-Security-Policy allows none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from mailgate.core.errors import InvalidValue
from mailgate.db import stats
from mailgate.db.models import Customer, Team
from mailgate.db.names import listed_names
from mailgate.web.auth import Principal, agent_only
from mailgate.web.context import portal
from mailgate.web.i18n import N_
from mailgate.web.pages import error_text, gettext, render

router = APIRouter(include_in_schema=False)  # a page, not part of the API
AgentP = Annotated[Principal, Depends(agent_only)]
PERIODS = (7, 30, 90, 365)
CHART_WIDTH, CHART_HEIGHT = 720, 160


@router.get("/agent/reports")
def reports(
    request: Request,
    principal: AgentP,
    days: Annotated[int, Query(ge=1, le=3660)] = 30,
    team: Annotated[str, Query(max_length=128)] = "",
    customer: Annotated[str, Query(max_length=255)] = "",
) -> Response:
    """The figures for the last ``days``, of one ``team`` or ``customer`` account
    (blank: all); an unknown name is a 400 page naming it."""
    p = portal(request)
    with p.store.transaction() as session:
        teams = list(session.scalars(select(Team.name).order_by(Team.name)))
        customers = listed_names(session, Customer.name)  # None: too many to list
        try:
            result = stats.compute(
                session,
                settings=p.settings,
                now=p.now(),
                since_days=days,
                team=team or None,
                customer=customer or None,
            )
        except InvalidValue as exc:
            back = ("/agent/reports", N_("All reports"))
            message = error_text(request, exc)
            return render(
                request, "error.html", 400, title=N_("Please check"), message=message, action=back
            )
    return render(
        request,
        "agent_reports.html",
        200,
        r=result,
        days=days,
        team=team,
        customer=customer,
        teams=teams,
        customers=customers,
        periods=PERIODS,
        bars=_bars(result["daily"]),
        duration=_duration_in(gettext(request)),
        chart=(CHART_WIDTH, CHART_HEIGHT),
    )


def _bars(daily: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One pair of bars (opened, closed) per day, scaled to the chart's height."""
    if not daily:
        return []
    top = max(1, *(max(d["opened"], d["closed"]) for d in daily))
    step = CHART_WIDTH / len(daily)
    width = max(1.0, step / 2 - 1)
    return [
        {
            "date": d["date"],
            "opened": d["opened"],
            "closed": d["closed"],
            "x": round(i * step, 2),
            "width": round(width, 2),
            "opened_height": round(d["opened"] / top * CHART_HEIGHT, 2),
            "closed_height": round(d["closed"] / top * CHART_HEIGHT, 2),
        }
        for i, d in enumerate(daily)
    ]


def _duration_in(_: Callable[[str], str]) -> Callable[[float | None], str]:
    """``stats.duration`` in the reader's words: ``45 min``, ``3 h 05 min``, ``2 d 4 h``."""
    words = (_("%(m)s min"), _("%(h)s h %(m)02d min"), _("%(d)s d %(h)s h"))
    return lambda seconds: stats.duration(seconds, words)
