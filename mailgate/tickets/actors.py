"""Who makes a change: an agent, an integration, the operator at the CLI, or the system."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.db.models import Agent


@dataclass(frozen=True)
class Actor:
    """Who acts: an agent, or an integration (``api:<name>``) with no address of its own.

    ``label`` is what the history records."""

    label: str
    email: str = ""
    name: str = ""
    agent_id: int | None = None
    # The trigger acting (``triggers.fire``): what it changes fires no trigger.
    trigger: str = ""


def agent_actor(agent: Agent) -> Actor:
    """The actor for a signed-in (or ``--as``) agent."""
    return Actor(label=agent.email, email=agent.email, name=agent.name, agent_id=agent.id)
