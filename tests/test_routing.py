"""Rules and assignment inside processing, on SQLite and PostgreSQL: what lands on the
ticket, and what the history says about it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from mailgate.core.settings import AgentSetting, CustomerSetting, RuleSetting, Settings, TeamSetting
from mailgate.db.models import Agent, HistoryEvent, Team, Ticket
from mailgate.db.store import Store
from mailgate.inbound.intake import Envelope, accept
from mailgate.tickets.mail import process
from tests.conftest import make_settings
from tests.worker_support import mail, ready_store

AGENTS = (
    AgentSetting("ann@example.com", "Ann", teams=("support",)),
    AgentSetting("bob@example.com", "Bob", teams=("support", "billing")),
    AgentSetting("cy@example.com", "Cy", teams=("support",), away=True),
    AgentSetting("dee@example.com", "Dee", teams=("billing",), active=False),
)
TEAMS = (
    TeamSetting("support", "round_robin"),
    TeamSetting("billing", "least_open", cap=2),
    TeamSetting("accounts", "account_owner"),
    TeamSetting("triage", "none"),
)
CUSTOMERS = (
    CustomerSetting("Acme", domains=("acme.test",), owner="bob@example.com", language="fr"),
    CustomerSetting("Globex", domains=("globex.test",), owner="cy@example.com"),
)
RULES = (
    RuleSetting(
        "outages",
        when={"subject": "(?i)outage", "header": {"X-Priority": "^1"}},
        set={"type": "Technical", "priority": "Urgent", "tags": ["outage"]},
    ),
    RuleSetting(
        "money", when={"subject": "(?i)invoice"}, set={"team": "billing", "priority": "High"}
    ),
    RuleSetting("accounts", when={"subject": "^ACCT"}, set={"team": "accounts"}),
    RuleSetting("triage", when={"subject": "^TRIAGE"}, set={"team": "triage"}),
    RuleSetting("ann", when={"from": "^vip@"}, set={"assignee": "ann@example.com"}),
    RuleSetting("cy", when={"from": "^fan@"}, set={"assignee": "cy@example.com"}),
)


@pytest.fixture
def rsettings(db_url: str) -> Settings:
    return make_settings(db_url, teams=TEAMS, agents=AGENTS, customers=CUSTOMERS, rules=RULES)


@pytest.fixture
def rstore(rsettings: Settings) -> Iterator[Store]:
    store = ready_store(rsettings)
    yield store
    store.engine.dispose()


@pytest.fixture
def deliver(
    rstore: Store, rsettings: Settings, now: Callable[[], datetime]
) -> Callable[..., dict[str, Any]]:
    """Store and process one message; return its ticket as plain values."""

    def run(**kwargs: Any) -> dict[str, Any]:
        inbound_id = accept(
            rstore, mail(**kwargs), source="test", envelope=Envelope(), max_bytes=10**6, now=now
        ).inbound_id
        result = process(rstore, inbound_id, settings=rsettings, now=now)
        assert result.outcome == "new_ticket", result
        with rstore.transaction() as session:
            ticket = session.scalar(select(Ticket).where(Ticket.number == result.ticket_number))
            assert ticket is not None
            agent = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
            team = session.get(Team, ticket.team_id) if ticket.team_id else None
            events = session.scalars(
                select(HistoryEvent)
                .where(HistoryEvent.ticket_id == ticket.id)
                .order_by(HistoryEvent.id)
            )
            return {
                "type": ticket.type,
                "priority": ticket.priority,
                "tags": list(ticket.tags),
                "team": team.name if team else None,
                "assignee": agent.email if agent else None,
                "history": [(e.action, e.new, e.detail) for e in events],
            }

    return run


def test_rules_set_fields_and_history_names_the_rules(
    deliver: Callable[..., dict[str, Any]],
) -> None:
    """A matching rule sets type, priority and tags; the history lists rules and changes."""
    t = deliver(subject="Outage in prod", headers=["X-Priority: 1 (Highest)"])
    assert (t["type"], t["priority"], t["tags"]) == ("Technical", "Urgent", ["outage"])
    actions = [a for a, _, _ in t["history"]]
    assert actions[:3] == ["created", "rules_applied", "assigned"]
    detail = t["history"][1][2]
    assert detail["matched"] == ["outages"]
    assert detail["set"]["priority"] == {"old": "Normal", "new": "Urgent", "rule": "outages"}
    plain = deliver(subject="Outage in prod")  # header condition unmet: no rule
    assert (plain["type"], plain["priority"]) == ("General", "Normal")
    assert "rules_applied" not in [a for a, _, _ in plain["history"]]


def test_round_robin_skips_away_agent_and_persists_the_cursor(
    deliver: Callable[..., dict[str, Any]],
) -> None:
    """Support tickets go Ann, Bob, Ann, Bob: Cy is away; the history says why."""
    got = [deliver(subject=f"question {i}")["assignee"] for i in range(4)]
    assert got == ["ann@example.com", "bob@example.com"] * 2
    assigned = deliver(subject="one more")["history"][-1]
    assert assigned[0] == "assigned" and assigned[1] == "ann@example.com"
    assert "round robin in team support" in assigned[2]["reason"]


def test_rule_team_with_least_open_and_cap(deliver: Callable[..., dict[str, Any]]) -> None:
    """A rule moves tickets to billing; least_open fills the active agent to the cap, then none."""
    first = deliver(subject="Invoice 1")
    assert (first["team"], first["priority"], first["assignee"]) == (
        "billing",
        "High",
        "bob@example.com",
    )
    assert deliver(subject="Invoice 2")["assignee"] == "bob@example.com"
    full = deliver(subject="Invoice 3")
    assert full["assignee"] is None
    assert full["history"][-1][0] == "unassigned"
    assert "cap of 2" in full["history"][-1][2]["reason"]


def test_account_owner_and_none(deliver: Callable[..., dict[str, Any]]) -> None:
    """account_owner gives Acme's owner; an away owner or strategy none leaves it unassigned."""
    assert deliver(sender="jo@acme.test", subject="ACCT change")["assignee"] == "bob@example.com"
    away = deliver(sender="jo@globex.test", subject="ACCT change")
    assert away["assignee"] is None
    assert away["history"][-1][2]["reason"] == "account owner cy@example.com is away"
    triage = deliver(sender="jo@acme.test", subject="TRIAGE me")
    assert (triage["team"], triage["assignee"]) == ("triage", None)


def test_rule_assignee_wins_unless_unavailable(deliver: Callable[..., dict[str, Any]]) -> None:
    """A rule's assignee takes the ticket; an away one falls back to the team strategy."""
    vip = deliver(sender="vip@else.test")
    assert vip["assignee"] == "ann@example.com"
    assert vip["history"][-1][2]["reason"] == "rule ann"
    fan = deliver(sender="fan@else.test")
    assert fan["assignee"] == "ann@example.com"  # round robin's first slot
    assert fan["history"][-1][2]["reason"].startswith(
        "rule cy named cy@example.com, who is not available"
    )
