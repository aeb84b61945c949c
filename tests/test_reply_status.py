"""Reply and set the status in one step (issue 20, item 3), from the CLI, the agent
portal and the API, on SQLite and PostgreSQL; and a customer's answer to a waiting
ticket returning it to the status it had before it waited, through real mail."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from mailgate.cli import cli as mailgate_cli
from mailgate.core import statuses
from mailgate.core.settings import DEFAULT_STATUSES, StatusSetting, TicketSettings
from mailgate.db.models import HistoryEvent, Ticket, TicketMessage
from tests.conftest import SECRET
from tests.mail import build
from tests.test_web_api import _bearer
from tests.web_support import Site, form, make_site, sign_in_agent


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url)
    yield s
    s.store.engine.dispose()


def _state(site: Site, number: int) -> dict[str, Any]:
    """The ticket's status, its status changes and replies, and the notices since seeding."""
    with site.store.transaction() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        events = list(
            session.scalars(
                select(HistoryEvent)
                .where(HistoryEvent.ticket_id == ticket.id)
                .order_by(HistoryEvent.id)
            )
        )
        replies = session.scalars(
            select(TicketMessage.body_text).where(
                TicketMessage.ticket_id == ticket.id, TicketMessage.direction == "outbound"
            )
        )
        return {
            "status": ticket.status,
            "closed_at": ticket.closed_at,
            "changes": [(e.old, e.new) for e in events if e.field == "status"],
            "actions": [e.action for e in events],
            "replies": list(replies),
            "notices": [(x.kind, x.recipient) for x in site.notices() if x.kind != "sign_in_link"],
        }


def _cli(site: Site, tmp_path: Path, *args: str, input: str = "") -> Result:
    config = tmp_path / "mailgate.toml"
    s = site.settings
    config.write_text(
        f'[database]\nurl = "{s.database.url}"\n[security]\nsecret = "{SECRET}"\n'
        f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n'
        '[[teams]]\nname = "support"\nassignment = "none"\n'
        '[[teams]]\nname = "billing"\nassignment = "none"\n'
        '[[agents]]\nemail = "ann@example.com"\nname = "Ann"\nteams = ["support"]\n'
        '[[agents]]\nemail = "bob@example.com"\nname = "Bob"\nteams = ["billing"]\n'
    )
    return CliRunner().invoke(mailgate_cli, ["--config", str(config), *args], input=input)


def test_cli_reply_with_status(site: Site, tmp_path: Path) -> None:
    """One command: the reply, the first reply's move to Open, the chosen status, and one
    notice, the reply's."""
    n = site.numbers["carol"]
    done = _cli(
        site,
        tmp_path,
        *(
            "tickets",
            "reply",
            str(n),
            "--file",
            "-",
            "--status",
            "Waiting",
            "--as",
            "ann@example.com",
        ),
        input="Which printer model is it?\n",
    )
    assert done.exit_code == 0, done.output
    assert done.output.strip().endswith("requester notified, ticket is Waiting")
    state = _state(site, n)
    assert state["status"] == "Waiting"
    assert state["changes"] == [("New", "Open"), ("Open", "Waiting")]
    assert state["actions"][-3:] == ["status", "agent_reply", "status"]
    assert state["notices"] == [("agent_replied", "carol@acme.test")]


def test_cli_reply_with_an_unknown_status_stores_nothing(site: Site, tmp_path: Path) -> None:
    n = site.numbers["carol"]
    refused = _cli(
        site, tmp_path, "tickets", "reply", str(n), "--file", "-", "--status", "Later", input="x\n"
    )
    assert refused.exit_code == 1
    assert "unknown status 'Later'" in refused.output and "Traceback" not in refused.output
    state = _state(site, n)
    assert (state["status"], state["replies"], state["notices"]) == ("New", [], [])
    helped = _cli(site, tmp_path, "tickets", "reply", "--help")
    assert "--status STATUS" in helped.output and "same step" in helped.output


def test_portal_reply_with_status(site: Site) -> None:
    """The status select beside the reply button; blank keeps the status."""
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    page = f"/tickets/{n}"
    assert 'id="reply_status" name="status"' in client.get(page).text
    sent = form(client, f"/agent/tickets/{n}/reply", page, body="On it.", status="On Hold")
    assert (sent.status_code, sent.headers["location"]) == (303, page + "?done=reply")
    kept = form(client, f"/agent/tickets/{n}/reply", page, body="Still on it.", status="")
    assert kept.status_code == 303
    state = _state(site, n)
    assert state["status"] == "On Hold"
    assert state["changes"] == [("New", "Open"), ("Open", "On Hold")]
    assert state["notices"] == [("agent_replied", "carol@acme.test")] * 2


def test_portal_reply_with_a_closing_status_closes(site: Site) -> None:
    client = sign_in_agent(site)
    n = site.numbers["dave"]
    page = f"/tickets/{n}"
    assert (
        form(
            client, f"/agent/tickets/{n}/reply", page, body="Fixed.", status="Resolved"
        ).status_code
        == 303
    )
    state = _state(site, n)
    assert state["status"] == "Resolved" and state["closed_at"] is not None
    assert state["notices"] == [("agent_replied", "dave@acme.test")]
    # Closed is final: a reply with a status is refused like any reply.
    again = form(client, f"/agent/tickets/{n}/reply", page, body="More.", status="Open")
    assert again.status_code == 409 and "closed" in again.text


def test_portal_reply_with_an_unknown_status_is_explained_and_stores_nothing(site: Site) -> None:
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    page = f"/tickets/{n}"
    refused = form(client, f"/agent/tickets/{n}/reply", page, body="Hi", status="Sleeping")
    assert refused.status_code == 400 and "unknown status" in refused.text
    assert f'href="{page}"' in refused.text
    state = _state(site, n)
    assert (state["status"], state["replies"], state["notices"]) == ("New", [], [])


def test_api_reply_with_status(site: Site) -> None:
    bearer = _bearer(site)
    client = site.client()
    n = site.numbers["carol"]
    schema = client.get("/api/openapi.json").json()
    named = schema["components"]["schemas"]["ReplyIn"]["properties"]["status"]["anyOf"][0]
    assert named["enum"] == [s.name for s in site.settings.tickets.statuses]
    sent = client.post(
        f"/api/tickets/{n}/replies",
        headers=bearer,
        json={"body": "Which model?", "status": "Waiting"},
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "Waiting"
    plain = client.post(f"/api/tickets/{n}/replies", headers=bearer, json={"body": "Well?"})
    assert plain.status_code == 201 and plain.json()["status"] == "Waiting"
    bad = client.post(
        f"/api/tickets/{n}/replies", headers=bearer, json={"body": "x", "status": "Sleeping"}
    )
    assert bad.status_code == 400 and "unknown status" in bad.json()["detail"]
    state = _state(site, n)
    assert state["changes"] == [("New", "Open"), ("Open", "Waiting")]
    assert state["replies"] == ["Which model?", "Well?"]
    assert state["notices"] == [("agent_replied", "carol@acme.test")] * 2


def _customer_answers(site: Site, number: int, sender: str) -> None:
    with site.store.transaction() as session:
        first = session.scalars(
            select(TicketMessage.message_id)
            .join(Ticket, Ticket.id == TicketMessage.ticket_id)
            .where(Ticket.number == number, TicketMessage.direction == "inbound")
            .order_by(TicketMessage.id)
        ).first()
    assert first
    found = site.ingest(
        build(sender=sender, subject="Re: x", body="Here it is.\n", in_reply_to=first)
    )
    assert found == number


def test_a_customer_answer_returns_a_waiting_ticket_to_its_status_before(site: Site) -> None:
    """On Hold → (reply and set) Waiting → the customer's mail: On Hold again, not Open."""
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    page = f"/tickets/{n}"
    form(client, f"/agent/tickets/{n}/status", page, status="On Hold")
    form(client, f"/agent/tickets/{n}/reply", page, body="Model?", status="Waiting")
    _customer_answers(site, n, "Carol <carol@acme.test>")
    state = _state(site, n)
    assert state["status"] == "On Hold"
    assert state["changes"][-2:] == [("On Hold", "Waiting"), ("Waiting", "On Hold")]
    # The ordinary flow still comes back to Open.
    d = site.numbers["dave"]
    form(client, f"/agent/tickets/{d}/reply", f"/tickets/{d}", body="Model?", status="Waiting")
    _customer_answers(site, d, "Dave <dave@acme.test>")
    assert _state(site, d)["changes"] == [("New", "Open"), ("Open", "Waiting"), ("Waiting", "Open")]


def test_a_wait_set_before_any_reply_returns_to_the_first_active_status(site: Site) -> None:
    """New → Waiting (no reply yet) → the customer's mail: Open, not New (an agent has
    handled it, as a first reply does)."""
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    form(client, f"/agent/tickets/{n}/status", f"/tickets/{n}", status="Waiting")
    _customer_answers(site, n, "Carol <carol@acme.test>")
    assert _state(site, n)["changes"] == [("New", "Waiting"), ("Waiting", "Open")]


def test_where_a_customer_reply_takes_a_waiting_ticket() -> None:
    """The pure rule: back to the status before the wait when it is one to go back to."""
    tickets = TicketSettings()
    back = statuses.after_customer_reply
    assert back("Waiting", tickets, "On Hold") == statuses.StatusChange("Waiting", "On Hold")
    for unusable in (None, "New", "Closed", "Waiting", "Gone"):
        assert back("Waiting", tickets, unusable) == statuses.StatusChange("Waiting", "Open")
    assert back("Open", tickets, "New") is None
    assert back("Closed", tickets, "Open") is None


def test_a_chain_of_waits_returns_to_where_the_wait_began(db_url: str) -> None:
    """Open → Waiting → Waiting on vendor → the customer's mail: Open."""
    more = (
        *DEFAULT_STATUSES[:3],
        StatusSetting("Waiting on vendor", "waiting"),
        *DEFAULT_STATUSES[3:],
    )
    site = make_site(
        db_url,
        adjust=lambda s: dataclasses.replace(
            s, tickets=dataclasses.replace(s.tickets, statuses=more)
        ),
    )
    try:
        client = sign_in_agent(site)
        n = site.numbers["carol"]
        page = f"/tickets/{n}"
        form(client, f"/agent/tickets/{n}/reply", page, body="Model?", status="Waiting")
        form(client, f"/agent/tickets/{n}/status", page, status="Waiting on vendor")
        _customer_answers(site, n, "Carol <carol@acme.test>")
        assert _state(site, n)["changes"][-1] == ("Waiting on vendor", "Open")
    finally:
        site.store.engine.dispose()
