"""Assignment choices as pure table tests: each strategy, skipping away and inactive agents."""

from __future__ import annotations

import pytest

from mailgate.core.assignment import AgentView, Choice, choose

ANN = AgentView(1, "ann@x.test", teams=("support",))
BOB = AgentView(2, "bob@x.test", teams=("support",))
CY = AgentView(3, "cy@x.test", teams=("support", "billing"))
AWAY = AgentView(4, "dee@x.test", away=True, teams=("support",))
GONE = AgentView(5, "ed@x.test", active=False, teams=("support",))
OTHER = AgentView(6, "flo@x.test", teams=("billing",))
ALL = (CY, AWAY, ANN, GONE, BOB, OTHER)


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (None, 1),  # first ticket: lowest id
        (1, 2),
        (2, 3),
        (3, 1),  # wraps, skipping away (4) and inactive (5)
        (4, 1),  # cursor on an agent who went away still moves on
        (99, 1),
    ],
)
def test_round_robin_walks_available_members_in_order(last: int | None, expected: int) -> None:
    """Round robin gives the next available team member after the cursor, wrapping."""
    assert (
        choose("round_robin", team="support", agents=ALL, last_agent_id=last).agent_id == expected
    )


def test_round_robin_gives_equal_shares() -> None:
    """Twelve tickets over three available agents: four each, in turn."""
    last, got = None, []
    for _ in range(12):
        last = choose("round_robin", team="support", agents=ALL, last_agent_id=last).agent_id
        got.append(last)
    assert got == [1, 2, 3] * 4


@pytest.mark.parametrize(
    ("counts", "cap", "expected"),
    [
        ({}, 0, 1),  # all equal: lowest id
        ({1: 3, 2: 1, 3: 2}, 0, 2),
        ({1: 3, 2: 1, 3: 1}, 0, 2),  # tie: lowest id
        ({1: 0, 4: 0}, 0, 1),  # the away agent's empty queue does not count
        ({1: 5, 2: 5, 3: 4}, 5, 3),  # cap excludes full agents
        ({1: 5, 2: 6, 3: 5}, 5, None),  # everyone at the cap: unassigned
    ],
)
def test_least_open(counts: dict[int, int], cap: int, expected: int | None) -> None:
    """least_open picks the fewest open tickets under the cap; nobody fits, nobody is chosen."""
    assert (
        choose("least_open", team="support", agents=ALL, open_counts=counts, cap=cap).agent_id
        == expected
    )


@pytest.mark.parametrize(
    ("owner", "expected", "reason"),
    [
        (BOB, 2, "account owner bob@x.test"),
        (OTHER, 6, "account owner flo@x.test"),  # owner need not be in the team
        (AWAY, None, "account owner dee@x.test is away"),
        (GONE, None, "account owner ed@x.test is inactive"),
        (None, None, "no account owner for this customer"),
    ],
)
def test_account_owner(owner: AgentView | None, expected: int | None, reason: str) -> None:
    """account_owner gives the customer's point of contact, unless away or inactive."""
    assert choose("account_owner", team="support", agents=ALL, owner=owner) == Choice(
        expected, reason
    )


def test_none_and_empty_team_leave_unassigned() -> None:
    """Strategy none, or a team with nobody available, chooses nobody and says why."""
    assert choose("none", team="support", agents=ALL).agent_id is None
    empty = choose("round_robin", team="sales", agents=ALL)
    assert empty == Choice(None, "no available agent in team sales")
    assert choose("least_open", team="support", agents=(AWAY, GONE)).agent_id is None


def test_unknown_strategy_is_a_bug() -> None:
    """A strategy validation would have refused raises instead of guessing."""
    with pytest.raises(ValueError, match="unknown assignment strategy"):
        choose("lottery", team="support", agents=ALL)
