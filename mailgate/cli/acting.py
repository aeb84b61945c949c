"""Who acts in a command that changes a ticket: ``--as AGENT``, recorded in the history."""

from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.db.models import Agent
from mailgate.tickets.actors import Actor, agent_actor

OPERATOR = "cli"
as_option = click.option(
    "--as",
    "as_",
    default=OPERATOR,
    show_default=True,
    metavar="AGENT",
    help="Who acts, recorded in the history: an agent's email, or an operator name.",
)


def actor_for(session: Session, who: str) -> Actor:
    """An agent when ``who`` is one (their notices then know who acted), else an operator label."""
    agent = session.scalar(select(Agent).where(Agent.email == who.strip().lower()))
    if agent is not None:
        return agent_actor(agent)
    return Actor(label=who.strip() or OPERATOR)
