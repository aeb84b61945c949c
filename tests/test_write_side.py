"""One write side: every channel opens tickets the same way, and the notice limits hold.

A ticket opened by mail, the customer portal, the JSON API and the CLI gets the same
rules, the same assignment and the same notices; the API cannot get around the
per-address hourly limit on acknowledgements. Real SQLite files and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailgate.cli import cli as mailgate_cli
from mailgate.core.settings import CustomerSetting, RuleSetting, Settings, TeamSetting
from mailgate.db.models import Agent, HistoryEvent, Notice, Ticket
from mailgate.web import api_tokens
from tests.mail import build
from tests.web_support import (
    Site,
    csrf_from,
    form,
    make_site,
    set_agent_passwords,
    sign_in_agent,
    sign_in_customer,
)

REQUESTER = "carol@acme.test"
SUBJECT = "Outage: nothing works"
BODY = "Since nine nobody in the office can reach the server."


def _ruled(settings: Settings) -> Settings:
    """A rule on the subject, and a team that assigns the account's point of contact."""
    rule = RuleSetting(
        name="outages are urgent",
        when={"subject": "(?i)outage"},
        set={"type": "Technical", "priority": "Urgent", "tags": ["outage"]},
    )
    return dataclasses.replace(
        settings,
        teams=(TeamSetting("support", "account_owner"), TeamSetting("billing", "none")),
        customers=(
            CustomerSetting(
                "Acme", domains=("acme.test",), admins=("boss@acme.test",), owner="bob@example.com"
            ),
        ),
        rules=(rule,),
    )


@pytest.fixture
def ruled_site(db_url: str) -> Iterator[Site]:
    site = make_site(db_url, seed=False, adjust=_ruled)
    yield site
    site.store.engine.dispose()


def _by_mail(site: Site) -> int:
    return site.ingest(build(sender=f"Carol <{REQUESTER}>", subject=SUBJECT, body=BODY))


def _by_portal(site: Site) -> int:
    client = sign_in_customer(site, REQUESTER)
    sent = client.post(
        "/tickets/new",
        data={
            "csrf": csrf_from(client, "/tickets/new"),
            "subject": SUBJECT,
            "body": BODY,
            "type": "General",
        },
    )
    assert sent.status_code == 303, sent.text
    return int(sent.headers["location"].split("?")[0].rsplit("/", 1)[1])


def _by_api(site: Site) -> int:
    with site.store.transaction() as session:
        token = api_tokens.add(session, "crm", site.clock())
    response = site.client().post(
        "/api/tickets",
        headers={"Authorization": f"Bearer {token}"},
        json={"requester": REQUESTER, "subject": SUBJECT, "body": BODY},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["number"])


def _by_agent_portal(site: Site) -> int:
    set_agent_passwords(site)
    client = sign_in_agent(site)
    sent = form(
        client,
        "/agent/new",
        "/agent/new",
        requester=REQUESTER,
        subject=SUBJECT,
        body=BODY,
    )
    assert sent.status_code == 303, sent.text
    return int(sent.headers["location"].split("?")[0].rsplit("/", 1)[1])


def _by_agent_token(site: Site) -> int:
    with site.store.transaction() as session:
        token = api_tokens.add(session, "ann-laptop", site.clock(), agent="ann@example.com")
    response = site.client().post(
        "/api/tickets",
        headers={"Authorization": f"Bearer {token}"},
        json={"requester": REQUESTER, "subject": SUBJECT, "body": BODY},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["number"])


def _by_cli(site: Site, tmp_path: Any) -> int:
    config = tmp_path / "cli.toml"
    config.write_text(_config_toml(site.settings))
    args = ["tickets", "create", "--requester", REQUESTER, "--subject", SUBJECT]
    result = CliRunner().invoke(
        mailgate_cli, ["--config", str(config), *args, "--as", "ann@example.com", "-"], input=BODY
    )
    assert result.exit_code == 0, result.output
    return int(result.stdout.strip())


def _config_toml(s: Settings) -> str:
    """The same installation as ``s``, written as the config file the CLI reads."""
    return f"""
[database]
url = "{s.database.url}"
[security]
secret = "{s.security.secret}"
[web]
base_url = "{s.web.base_url}"
[[teams]]
name = "support"
assignment = "account_owner"
[[teams]]
name = "billing"
assignment = "none"
[[agents]]
email = "ann@example.com"
name = "Ann"
teams = ["support"]
[[agents]]
email = "bob@example.com"
name = "Bob"
teams = ["billing"]
[[customers]]
name = "Acme"
domains = ["acme.test"]
admins = ["boss@acme.test"]
owner = "bob@example.com"
[[rules]]
name = "outages are urgent"
when = {{ subject = "(?i)outage" }}
set = {{ type = "Technical", priority = "Urgent", tags = ["outage"] }}
"""


CHANNELS: dict[str, Callable[..., int]] = {
    "mail": lambda site, tmp_path: _by_mail(site),
    "portal": lambda site, tmp_path: _by_portal(site),
    "api": lambda site, tmp_path: _by_api(site),
    "agent portal": lambda site, tmp_path: _by_agent_portal(site),
    "api, agent's token": lambda site, tmp_path: _by_agent_token(site),
    "cli": _by_cli,
}


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_every_channel_gets_the_same_rules_assignment_and_notices(
    ruled_site: Site, channel: str, tmp_path: Any
) -> None:
    """Mail, portal, API and CLI: the rule sets type, priority and tag, the account's
    point of contact is assigned, and the requester and the agent are told."""
    site = ruled_site
    number = CHANNELS[channel](site, tmp_path)
    with site.store.transaction() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        assignee = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
        actions = [
            (e.actor, e.action, e.new)
            for e in session.scalars(
                select(HistoryEvent)
                .where(HistoryEvent.ticket_id == ticket.id)
                .order_by(HistoryEvent.id)
            )
        ]
        told = sorted(
            (n.kind, n.recipient, n.state)
            for n in session.scalars(select(Notice).where(Notice.ticket_id == ticket.id))
        )
    assert (ticket.type, ticket.priority, ticket.tags) == ("Technical", "Urgent", ["outage"])
    assert assignee is not None and assignee.email == "bob@example.com"
    assert ("rules", "rules_applied", "") in actions
    assert ("assignment", "assigned", "bob@example.com") in actions
    assert told == [
        ("acknowledgement", REQUESTER, "pending"),
        ("assigned", "bob@example.com", "pending"),
    ]


def test_api_acknowledgements_keep_the_hourly_limit(db_url: str) -> None:
    """8 tickets for one requester through the API within the hour: acknowledgements past
    outbound.max_per_hour_per_address are written suppressed, with the reason."""
    site = make_site(db_url, seed=False)
    try:
        limit = site.settings.outbound.max_per_hour_per_address
        with site.store.transaction() as session:
            token = api_tokens.add(session, "crm", site.clock())
        client = site.client()
        for i in range(8):
            site.clock.advance(minutes=5)
            response = client.post(
                "/api/tickets",
                headers={"Authorization": f"Bearer {token}"},
                json={"requester": REQUESTER, "subject": f"Question {i}", "body": "Hello"},
            )
            assert response.status_code == 201, response.text
        acks = site.notices("acknowledgement")
        assert [n.state for n in acks] == ["pending"] * limit + ["suppressed"] * (8 - limit)
        assert all(
            n.last_error == f"rate limit: {limit} notices to this address in the last hour"
            for n in acks[limit:]
        )
    finally:
        site.store.engine.dispose()
