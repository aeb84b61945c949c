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


# After NUMBER, every word of `tickets tag/helpers/departments` is a change: "-urgent"
# must not be read as options (-u -r -g ...), so click stops parsing there (these
# settings) and ``plus_minus`` picks --as out of the words.
PLUS_MINUS_SETTINGS = {"ignore_unknown_options": True, "allow_interspersed_args": False}


def plus_minus(words: tuple[str, ...], as_: str) -> tuple[list[str], list[str], str]:
    """(added, removed, who acts) from "+X" or "X" (add), "-X" (remove) and "--as A"."""
    rest = list(words)
    for i, word in enumerate(rest):
        if word == "--as" and i + 1 < len(rest):
            as_ = rest[i + 1]
            del rest[i : i + 2]
            break
        if word.startswith("--as="):
            as_ = word.removeprefix("--as=")
            del rest[i]
            break
    add = [w.removeprefix("+") for w in rest if not w.startswith("-")]
    remove = [w.removeprefix("-") for w in rest if w.startswith("-")]
    return add, remove, as_


def actor_for(session: Session, who: str) -> Actor:
    """An agent when ``who`` is one (their notices then know who acted), else an operator label."""
    agent = session.scalar(select(Agent).where(Agent.email == who.strip().lower()))
    if agent is not None:
        return agent_actor(agent)
    return Actor(label=who.strip() or OPERATOR)
