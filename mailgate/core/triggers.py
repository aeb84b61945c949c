"""Status triggers (issue 20): when something happens to a ticket, move it on.

``[[triggers]]`` name an event, optional conditions on the ticket, and the fields to
set. Pure: the event and the ticket's state in, the triggers that fire out; the write
side (``mailgate.tickets.triggers``) applies them in the transaction of the change that
fired them.

Conditions are read after the change that fired the event (a reply that set the status
to "Needs Clarification" is seen in that status); ``from_status`` is the status before
it. Every trigger that matches fires, once, in the order of the config, each judged on
the same state: what one trigger sets does not make another match (and fires nothing:
a change made by a trigger fires no trigger, so triggers cannot loop).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mailgate.core.settings import TriggerSetting

# What happens to a ticket that a trigger may answer, in the words of the history.
EVENTS = (
    "created",  # opened by any channel, after the rules and the assignment
    "assigned",  # given to an agent (by the assignment, by hand, by the API)
    "agent_replied",
    "customer_replied",  # a customer's reply by mail, portal or API (not auto-replies)
    "status_changed",  # set by hand (the CLI, the portal, the API), not by a reply
    "priority_changed",
    "type_changed",
    "team_changed",
    "tags_changed",
    "due_date_set",  # a follow-up or action-required date set (not cleared)
    "sla_breached",  # the SLA check found a first-response or resolution target missed
)
# Conditions (``when``): each names one value or a list of values, any of which matches.
# ``tags``: the ticket has every one listed. ``assignee``: an agent's email or "none".
CONDITIONS = ("status", "from_status", "priority", "type", "team", "customer", "assignee", "tags")
# What a trigger sets (``set``), applied in this order: the status last, so a trigger
# that closes the ticket changes the rest first. ``tags``: "x" or "+x" adds, "-x" removes.
# ``assignee``: an agent's email, or "none" to unassign. ``team``: a team or "none".
ACTIONS = ("type", "priority", "team", "tags", "assignee", "status")
NONE = "none"


@dataclass(frozen=True)
class TicketState:
    """What conditions may test, read from the ticket when the event happened."""

    status: str
    from_status: str
    priority: str
    type: str
    team: str  # "" for none
    customer: str  # the customer account's name, "" for none
    assignee: str  # the agent's email, "" for none
    tags: tuple[str, ...] = ()


def values(value: str | Sequence[str]) -> tuple[str, ...]:
    """A condition's or action's value as a tuple of strings."""
    return (value,) if isinstance(value, str) else tuple(value)


def matches(trigger: TriggerSetting, event: str, state: TicketState) -> bool:
    """Does ``trigger`` fire for ``event`` on a ticket in ``state``?"""
    if trigger.event != event:
        return False
    for key, expected in trigger.when.items():
        wanted = values(expected)
        if key == "tags":
            if not set(wanted) <= set(state.tags):
                return False
        elif key in ("team", "assignee"):
            actual = getattr(state, key) or NONE
            if actual.lower() not in {w.lower() for w in wanted}:
                return False
        elif getattr(state, key) not in wanted:
            return False
    return True


def firing(
    triggers: Iterable[TriggerSetting], event: str, state: TicketState
) -> tuple[TriggerSetting, ...]:
    """The triggers ``event`` fires on a ticket in ``state``, in the config's order."""
    return tuple(t for t in triggers if matches(t, event, state))


def tag_changes(tags: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A ``set.tags`` list as (added, removed): "x" and "+x" add, "-x" removes."""
    added = tuple(t.removeprefix("+") for t in tags if not t.startswith("-"))
    removed = tuple(t[1:] for t in tags if t.startswith("-"))
    return added, removed
