"""Who gets a new ticket (DESIGN.md §5): a pure choice over loaded values.

The caller loads the team's agents, the round-robin cursor and open-ticket counts
under the team row's lock, calls ``choose``, and stores the result in the same
transaction; that is what makes the choice concurrency-safe (``routing.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

STRATEGIES = ("account_owner", "round_robin", "least_open", "none")


@dataclass(frozen=True)
class AgentView:
    id: int
    email: str
    active: bool = True
    away: bool = False
    teams: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.active and not self.away


@dataclass(frozen=True)
class Choice:
    """The agent chosen (None: the ticket stays unassigned) and why, for the history."""

    agent_id: int | None
    reason: str


def team_members(agents: Iterable[AgentView], team: str) -> tuple[AgentView, ...]:
    """Available agents of ``team`` in id order, the order round robin walks."""
    return tuple(sorted((a for a in agents if team in a.teams and a.available), key=lambda a: a.id))


def choose(
    strategy: str,
    *,
    team: str,
    agents: Sequence[AgentView],
    owner: AgentView | None = None,
    last_agent_id: int | None = None,
    open_counts: Mapping[int, int] | None = None,
    cap: int = 0,
) -> Choice:
    """Pick an agent for a new ticket of ``team`` by ``strategy``.

    ``owner`` is the customer account's owner (account_owner); ``last_agent_id`` the
    team's round-robin cursor; ``open_counts`` open tickets per agent id
    (least_open, with ``cap`` the most an agent may hold, 0 for no cap).
    """
    if strategy == "none":
        return Choice(None, f"team {team} assigns nobody automatically")
    if strategy == "account_owner":
        if owner is None:
            return Choice(None, "no account owner for this customer")
        if not owner.available:
            state = "inactive" if not owner.active else "away"
            return Choice(None, f"account owner {owner.email} is {state}")
        return Choice(owner.id, f"account owner {owner.email}")
    members = team_members(agents, team)
    if not members:
        return Choice(None, f"no available agent in team {team}")
    if strategy == "round_robin":
        # The next member after the cursor, wrapping; a cursor on an agent who has
        # since left or gone away still orders correctly because ids are compared.
        after = [a for a in members if last_agent_id is not None and a.id > last_agent_id]
        pick = after[0] if after else members[0]
        return Choice(pick.id, f"round robin in team {team}: {pick.email}")
    if strategy == "least_open":
        counts = open_counts or {}
        fits = [a for a in members if cap <= 0 or counts.get(a.id, 0) < cap]
        if not fits:
            return Choice(None, f"every agent in team {team} is at the cap of {cap} open tickets")
        pick = min(fits, key=lambda a: (counts.get(a.id, 0), a.id))
        return Choice(
            pick.id, f"least open in team {team}: {pick.email} ({counts.get(pick.id, 0)} open)"
        )
    raise ValueError(f"unknown assignment strategy {strategy!r}")
