"""Canned responses: the text rules, `mailgate responses`, `tickets reply --response`, the portal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from mailgate.core.errors import InvalidValue, NotFound
from mailgate.db.models import CannedResponse
from mailgate.db.store import Store
from mailgate.tickets import canned_responses as responses
from mailgate.tickets import canned_text as response_text
from tests.mail import build
from tests.test_ticket_cli import REPO, Cli, desk, notices, show
from tests.web_support import Site, form, make_site, sign_in_agent

__all__ = ["desk"]  # the fixture, shared with the ticket CLI tests

AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
FIXED = "Dear {{ requester_name }},\n\nticket #{{ ticket.number }} is fixed.\n\n{{ agent_name }}\n"


# --- The text rules (pure) ---


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("   \n\t", "the response is empty"),
        ("Hi {{ name }}", "unknown placeholder {{ name }}"),
        ("Ref {{ ticket.requester }}", "unknown placeholder {{ ticket.requester }}"),
        ("{{ requester_name|upper }}", "only plain {{ placeholder }} substitutions"),
        ("{{ ticket['number'] }}", "only plain {{ placeholder }} substitutions"),
        ("{{ ''.__class__ }}", "only plain {{ placeholder }} substitutions"),
        ("{% if agent_name %}x{% endif %}", "no {% ... %} blocks"),
        ("Hello {{ requester_name", "does not parse on line 1"),
    ],
)
def test_bad_bodies_are_refused_with_the_reason(body: str, error: str) -> None:
    """Empty text, unknown placeholders, anything but plain substitution, broken syntax."""
    with pytest.raises(InvalidValue, match=error.replace("{", r"\{").replace("[", r"\[")):
        response_text.check_body(body)


@pytest.mark.parametrize("name", ["", "Refund", "two words", "-x", "é", "a" * 65, "x/y"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidValue, match="bad response name"):
        response_text.check_name(name)


def test_render_fills_every_placeholder_and_keeps_literals() -> None:
    """Each known placeholder is filled; a quoted literal {{ '{{' }} stays literal text."""
    body = (
        "{{ requester_name }} {{ requester_email }} {{ agent_name }} {{ agent_email }} "
        "#{{ ticket.number }} {{ ticket.subject }} {{ ticket.status }} {{ ticket.priority }} "
        "{{ ticket.type }} {{ '{{' }}"
    )
    values = {"requester_name": "Carol", "requester_email": "c@x.test"}
    values |= {"agent_name": "Ann", "agent_email": "ann@example.com"}
    ticket = {"number": "7", "subject": "<b>Fire</b>", "status": "Open"}
    ticket |= {"priority": "High", "type": "Technical"}
    assert response_text.render(body, values, ticket) == (
        "Carol c@x.test Ann ann@example.com #7 <b>Fire</b> Open High Technical {{"
    )


# --- The store, on SQLite and PostgreSQL ---


def test_add_replace_remove(store: Store) -> None:
    """A name is taken once unless replaced; replacing keeps the author and creation time."""
    with store.transaction() as session:
        _, replaced = responses.add(session, "refund", "Refunded.", by="ann", at=AT)
        assert not replaced
    with store.transaction() as session, pytest.raises(InvalidValue, match="--replace"):
        responses.add(session, "refund", "Other.", by="bob", at=AT)
    later = AT.replace(hour=10)
    with store.transaction() as session:
        _, replaced = responses.add(session, "refund", "Other.", by="bob", at=later, replace=True)
        assert replaced
    with store.transaction() as session:
        [shown] = responses.list_all(session)
        assert (shown["body"], shown["created_by"]) == ("Other.", "ann")
        assert (shown["created_at"], shown["updated_at"]) == (AT.isoformat(), later.isoformat())
        responses.remove(session, "refund")
    with store.transaction() as session:
        assert session.scalar(select(CannedResponse)) is None
        with pytest.raises(NotFound, match="no canned response 'refund'"):
            responses.remove(session, "refund")


# --- The CLI ---


def test_responses_add_list_show_remove(desk: Cli, tmp_path: Path) -> None:
    """From a file and from stdin; listed newest first; shown as stored; removed."""
    text = tmp_path / "fixed.txt"
    text.write_text(FIXED)
    added = desk("responses", "add", "fixed", "--file", str(text), "--as", "ann@example.com")
    assert added.exit_code == 0 and added.output == "response fixed added\n"
    assert desk("responses", "add", "thanks", "--file", "-", input="Thanks!\n").exit_code == 0
    listed = json.loads(desk("responses", "list", "--json").output)
    assert [r["name"] for r in listed] == ["thanks", "fixed"]
    assert listed[1]["placeholders"] == ["agent_name", "requester_name", "ticket.number"]
    assert listed[1]["created_by"] == "ann@example.com"
    table = desk("responses", "list").output.splitlines()
    assert table[0].split() == ["NAME", "UPDATED", "BY", "TEXT"] and len(table) == 3
    assert desk("responses", "show", "fixed").output == FIXED.strip() + "\n"
    assert desk("responses", "remove", "thanks").exit_code == 0
    assert [r["name"] for r in json.loads(desk("responses", "list", "--json").output)] == ["fixed"]
    assert desk("responses", "list", "--limit", "-1").exit_code == 2


def test_responses_refusals_are_one_line(desk: Cli) -> None:
    """Duplicate, empty, bad name, unknown placeholder, unknown name: exit 1 and why."""
    assert desk("responses", "add", "thanks", "--file", "-", input="Thanks!").exit_code == 0
    cases = [
        (("add", "thanks", "--file", "-"), "Other", "a canned response 'thanks' exists"),
        (("add", "empty", "--file", "-"), " \n", "the response is empty"),
        (("add", "Bad Name", "--file", "-"), "x", "bad response name 'Bad Name'"),
        (("add", "x", "--file", "-"), "{{ secret }}", "unknown placeholder {{ secret }}"),
        (("show", "nope"), None, "no canned response 'nope'"),
        (("remove", "nope"), None, "no canned response 'nope'"),
    ]
    for args, stdin, error in cases:
        result = desk("responses", *args, input=stdin)
        assert result.exit_code == 1, (args, result.output)
        assert result.output == f"mailgate: {error}" + result.output.split(error, 1)[1]
        assert len(result.output.strip().splitlines()) == 1
    assert desk("responses", "show", "thanks").output == "Thanks!\n"  # not replaced


def test_reply_with_a_response_is_a_normal_agent_reply(desk: Cli) -> None:
    """The filled-in text is stored as the agent's reply, the history names the response,
    and the requester gets the usual content-free notice."""
    assert desk("responses", "add", "fixed", "--file", "-", input=FIXED).exit_code == 0
    result = desk("tickets", "reply", "2", "--response", "fixed", "--as", "ann@example.com")
    assert result.exit_code == 0, result.output
    ticket = show(desk, 2)
    [reply] = [m for m in ticket["messages"] if m["direction"] == "outbound"]
    assert reply["body"] == "Dear Carol Customer,\n\nticket #2 is fixed.\n\nAnn"
    assert reply["from"] == "ann@example.com"
    event = [e for e in ticket["history"] if e["action"] == "agent_reply"][-1]
    assert (event["actor"], event["detail"]["response"]) == ("ann@example.com", "fixed")
    assert ticket["status"] == "Open"
    replied = notices(desk, "agent_replied")
    assert [(n["ticket"], n["recipient"]) for n in replied] == [(2, "carol@customer.test")]


def test_reply_with_a_response_refusals(desk: Cli) -> None:
    """Both or neither text source is a usage error; an unknown response, a missing
    ticket, a closed ticket, or {{ agent_name }} without an agent are refused."""
    assert desk("responses", "add", "fixed", "--file", "-", input=FIXED).exit_code == 0
    both = desk("tickets", "reply", "1", "--response", "fixed", "--file", "-", input="x")
    assert both.exit_code == 2 and "exactly one of --file or --response" in both.output
    assert desk("tickets", "reply", "1").exit_code == 2
    unknown = desk("tickets", "reply", "1", "--response", "nope")
    assert unknown.exit_code == 1 and "no canned response 'nope'" in unknown.output
    missing = desk("tickets", "reply", "99", "--response", "fixed", "--as", "ann@example.com")
    assert missing.exit_code == 1 and "no ticket #99" in missing.output
    nobody = desk("tickets", "reply", "1", "--response", "fixed")
    assert nobody.exit_code == 1
    assert "names the agent; reply as one (--as AGENT), not as 'cli'" in nobody.output
    assert desk("tickets", "close", "1").exit_code == 0
    closed = desk("tickets", "reply", "1", "--response", "fixed", "--as", "ann@example.com")
    assert closed.exit_code == 1 and "ticket #1 is Closed" in closed.output
    assert not [m for m in show(desk, 1)["messages"] if m["direction"] == "outbound"]
    assert notices(desk, "agent_replied") == []


def test_unknown_response_from_the_real_command(desk: Cli, tmp_path: Path) -> None:
    """As a real process: one `mailgate:` line on stderr, exit 1, no traceback."""
    config = str(tmp_path / "mailgate.toml")
    command = ["tickets", "reply", "1", "--response", "nope"]
    proc = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", config, *command],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == "mailgate: no canned response 'nope' (see `mailgate responses list`)\n"


def test_a_requester_without_a_name_is_greeted_by_address(desk: Cli, tmp_path: Path) -> None:
    """No display name: {{ requester_name }} is the address, never empty."""
    mail = tmp_path / "bare.eml"
    mail.write_bytes(build(sender="dan@customer.test", subject="Hello"))
    assert desk("ingest", str(mail)).exit_code == 0
    assert (
        desk("responses", "add", "hi", "--file", "-", input="Hi {{ requester_name }}").exit_code
        == 0
    )
    assert desk("tickets", "reply", "3", "--response", "hi").exit_code == 0
    [reply] = [m for m in show(desk, 3)["messages"] if m["direction"] == "outbound"]
    assert reply["body"] == "Hi dan@customer.test"


# --- The portal ---


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = make_site(f"sqlite:///{tmp_path / 'mailgate.db'}")
    with s.store.transaction() as session:
        responses.add(session, "fixed", FIXED, by="cli", at=AT)
    yield s
    s.store.engine.dispose()


def test_portal_reply_form_offers_responses(site: Site) -> None:
    """The reply form lists the responses; choosing one with no text sends it filled in."""
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    page = client.get(f"/tickets/{n}")
    assert '<select id="response" name="response">' in page.text
    assert '<option value="fixed">fixed</option>' in page.text
    sent = form(client, f"/agent/tickets/{n}/reply", f"/tickets/{n}", body="", response="fixed")
    assert sent.status_code == 303, sent.text
    shown = client.get(f"/tickets/{n}")
    assert f"ticket #{n} is fixed." in shown.text and "Dear Carol" in shown.text
    assert [x.recipient for x in site.notices("agent_replied")] == ["carol@acme.test"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"body": "typed too", "response": "fixed"}, "not both"),
        ({"body": "", "response": "gone"}, "no canned response &#39;gone&#39;"),
        ({"body": "", "response": ""}, "empty"),
    ],
)
def test_portal_reply_refusals(site: Site, fields: dict[str, str], error: str) -> None:
    """Text and a response both, a response removed meanwhile, or neither: 400, nothing sent."""
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    response = form(client, f"/agent/tickets/{n}/reply", f"/tickets/{n}", **fields)
    assert response.status_code == 400 and error in response.text
    assert site.notices("agent_replied") == []
