"""Staff open tickets for customers from the agent portal and through the API with an
agent's token (issue 20, item 2): intake.policy does not apply to staff, a chosen team
and assignee win, the requester is acknowledged; integrations' tokens keep the policy."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailgate.core.settings import IntakeSettings
from mailgate.db.models import Agent
from mailgate.web import api_tokens
from tests.web_support import Site, _show, csrf_from, form, make_site, sign_in_agent

STRANGER = "zed@nowhere.test"  # no customer account: intake.policy "known" refuses him


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(
        db_url, adjust=lambda st: dataclasses.replace(st, intake=IntakeSettings(policy="known"))
    )
    yield s
    s.store.engine.dispose()


def _token(site: Site, name: str, agent: str | None = None) -> dict[str, str]:
    with site.store.transaction() as session:
        token = api_tokens.add(session, name, site.clock(), agent=agent)
    return {"Authorization": f"Bearer {token}"}


def test_the_agent_portal_form_opens_a_ticket_for_a_stranger(site: Site) -> None:
    client = sign_in_agent(site)
    page = client.get("/agent/new?requester=zed@nowhere.test")
    assert page.status_code == 200 and 'value="zed@nowhere.test"' in page.text
    sent = form(
        client,
        "/agent/new",
        "/agent/new",
        requester="Zed@Nowhere.test",
        name="Zed",
        subject="Phoned in: printer",
        body="He called about the printer.",
        type="Technical",
        priority="High",
        team="billing",
        assignee="bob@example.com",
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"].endswith("?done=new")
    number = int(sent.headers["location"].split("?")[0].rsplit("/", 1)[1])
    ticket = _show(site, number)
    assert (ticket["requester"], ticket["type"], ticket["priority"]) == (
        STRANGER,
        "Technical",
        "High",
    )
    assert (ticket["team"], ticket["assignee"]) == ("billing", "bob@example.com")
    assert ticket["history"][0]["actor"] == "ann@example.com"
    assert ticket["messages"][0]["thread_method"] == "portal"
    told = [(n.kind, n.recipient) for n in site.notices()]
    assert ("acknowledgement", STRANGER) in told and ("assigned", "bob@example.com") in told


def test_a_wrong_value_comes_back_on_the_form_with_what_was_typed(site: Site) -> None:
    client = sign_in_agent(site)
    before = len(site.notices())
    for field, value, says in (
        ("requester", "not an address", "is not an email address"),
        ("assignee", "nobody@example.com", "no active agent"),
        ("priority", "Whenever", "unknown priority"),
    ):
        fields = {
            "requester": STRANGER,
            "subject": "Typed with care",
            "body": "A long text the agent must not lose.",
            field: value,
        }
        sent = form(client, "/agent/new", "/agent/new", **fields)
        assert sent.status_code == 400 and says in sent.text, (field, sent.text)
        assert "A long text the agent must not lose." in sent.text
        assert 'value="Typed with care"' in sent.text
    assert len(site.notices()) == before  # nothing opened, nobody told


def test_only_agents_with_the_form_token_may_post(site: Site) -> None:
    agent = sign_in_agent(site)
    fields = {"requester": STRANGER, "subject": "x", "body": "y"}
    assert agent.post("/agent/new", data=fields).status_code == 403  # no CSRF token
    anonymous = site.client()
    token = csrf_from(anonymous, "/sign-in")
    refused = anonymous.post("/agent/new", data={**fields, "csrf": token})
    assert refused.status_code in (303, 401, 403)
    assert not site.notices()


def test_an_agents_token_acts_as_the_agent_with_staff_rights(site: Site) -> None:
    client = site.client()
    body: dict[str, Any] = {"requester": STRANGER, "subject": "Phoned in", "body": "Call back"}
    plain = _token(site, "crm")
    refused = client.post("/api/tickets", headers=plain, json=body)
    assert refused.status_code == 403  # an integration keeps the intake policy
    chosen = client.post("/api/tickets", headers=plain, json={**body, "team": "billing"})
    assert chosen.status_code == 403 and "agent's token" in chosen.json()["detail"]

    ann = _token(site, "ann-laptop", agent="ann@example.com")
    made = client.post(
        "/api/tickets", headers=ann, json={**body, "assignee": "bob@example.com", "team": "billing"}
    )
    assert made.status_code == 201, made.text
    number = made.json()["number"]
    ticket = _show(site, number)
    assert (ticket["team"], ticket["assignee"]) == ("billing", "bob@example.com")
    assert ticket["history"][0]["actor"] == "ann@example.com"
    reply = client.post(f"/api/tickets/{number}/replies", headers=ann, json={"body": "On it."})
    assert reply.status_code == 201
    assert _show(site, number)["history"][-1]["actor"] == "ann@example.com"
    assert ("acknowledgement", STRANGER) in [(n.kind, n.recipient) for n in site.notices()]

    with site.store.transaction() as session:
        session.scalars(select(Agent).where(Agent.email == "ann@example.com")).one().active = False
    # A deactivated agent's token stops working.
    assert client.get("/api/tickets", headers=ann).status_code == 401
    assert client.get("/api/tickets", headers=plain).status_code == 200


def test_api_tokens_add_agent_from_the_cli(cli: Any, tmp_path: Path) -> None:
    config = tmp_path / "mailgate.toml"
    cli("api-tokens", "list")  # writes the default config
    config.write_text(config.read_text() + '[[agents]]\nemail = "ann@example.com"\nname = "Ann"\n')
    unknown = cli("api-tokens", "add", "laptop", "--agent", "nobody@example.com")
    assert (unknown.exit_code, unknown.output) == (
        1,
        "mailgate: no active agent 'nobody@example.com'\n",
    )
    made = cli("api-tokens", "add", "laptop", "--agent", "Ann@Example.com")
    assert made.exit_code == 0, made.output
    listed = cli("api-tokens", "list", "--json")
    assert listed.exit_code == 0, listed.output
    listing = json.loads(listed.stdout)
    assert [(t["name"], t["agent"]) for t in listing] == [("laptop", "ann@example.com")]
    assert "ann@example.com" in cli("api-tokens", "list").output
