"""Agents' work from the CLI: assign, status, reply, note, close, link through agent_actions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.conftest import SECRET
from tests.mail import build

REPO = Path(__file__).resolve().parents[1]
Cli = Callable[..., Result]


@pytest.fixture
def desk(cli: Cli, tmp_path: Path) -> Cli:
    """A SQLite desk with agents Ann and Bob (no automatic assignment) and tickets #1 and #2."""
    (tmp_path / "mailgate.toml").write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "mailgate.db"}"\n'
        f'[security]\nsecret = "{SECRET}"\n'
        f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n'
        '[[teams]]\nname = "support"\nassignment = "none"\n'
        '[[agents]]\nemail = "ann@example.com"\nname = "Ann"\nteams = ["support"]\n'
        '[[agents]]\nemail = "bob@example.com"\nname = "Bob"\nteams = ["support"]\n'
    )
    for i, subject in enumerate(("Printer on fire", "VPN is down")):
        mail = tmp_path / f"m{i}.eml"
        mail.write_bytes(build(subject=subject, body="Customer words.\n"))
        assert cli("ingest", str(mail)).exit_code == 0
    return cli


def show(cli: Cli, number: int) -> dict[str, Any]:
    result = cli("tickets", "show", str(number), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def notices(cli: Cli, kind: str) -> list[dict[str, Any]]:
    result = cli("notices", "list", "--json", "--limit", "0")
    return [n for n in json.loads(result.output) if n["kind"] == kind]


def test_assign_records_who_and_tells_the_assignee(desk: Cli) -> None:
    """assign gives the ticket to an agent, records --as in history, and notifies the assignee."""
    result = desk("tickets", "assign", "1", "bob@example.com", "--as", "ann@example.com")
    assert result.exit_code == 0, result.output
    ticket = show(desk, 1)
    assert ticket["assignee"] == "bob@example.com"
    event = ticket["history"][-1]
    assert (event["actor"], event["action"], event["new"]) == (
        "ann@example.com",
        "assigned",
        "bob@example.com",
    )
    assert [n["recipient"] for n in notices(desk, "assigned")] == ["bob@example.com"]
    refused = desk("tickets", "assign", "1", "nobody@example.com")
    assert refused.exit_code == 1 and "no active agent" in refused.output


def test_status_defaults_to_the_cli_operator(desk: Cli) -> None:
    """status moves the ticket, with 'cli' as the actor unless --as says otherwise."""
    assert desk("tickets", "status", "1", "Waiting").exit_code == 0
    ticket = show(desk, 1)
    assert ticket["status"] == "Waiting"
    assert (ticket["history"][-1]["actor"], ticket["history"][-1]["new"]) == ("cli", "Waiting")
    unknown = desk("tickets", "status", "1", "Sleeping")
    assert unknown.exit_code == 1 and "unknown status 'Sleeping'" in unknown.output


def test_reply_from_stdin_stores_a_message_and_a_content_free_notice(desk: Cli) -> None:
    """reply --file - stores an outbound message and writes the agent_replied notice."""
    result = desk(
        "tickets", "reply", "2", "--file", "-", "--as", "ann@example.com", input="Fixed.\n"
    )
    assert result.exit_code == 0, result.output
    ticket = show(desk, 2)
    outbound = [m for m in ticket["messages"] if m["direction"] == "outbound"]
    assert [(m["body"], m["from"]) for m in outbound] == [("Fixed.", "ann@example.com")]
    assert ticket["status"] == "Open" and ticket["first_response_at"] is not None
    replied = notices(desk, "agent_replied")
    assert [(n["ticket"], n["recipient"]) for n in replied] == [(2, "carol@customer.test")]
    empty = desk("tickets", "reply", "2", "--file", "-", input="  \n")
    assert empty.exit_code == 1 and "empty" in empty.output


def test_note_from_a_file_sends_nothing(desk: Cli, tmp_path: Path) -> None:
    """note --file F adds an internal note and no notice."""
    text = tmp_path / "note.txt"
    text.write_text("internal: call them back\n")
    before = len(notices(desk, "agent_replied")) + len(notices(desk, "status_changed"))
    assert desk("tickets", "note", "1", "--file", str(text), "--as", "bob").exit_code == 0
    ticket = show(desk, 1)
    assert [m["body"] for m in ticket["messages"] if m["direction"] == "note"] == [
        "internal: call them back"
    ]
    assert ticket["history"][-1]["actor"] == "bob"
    after = len(notices(desk, "agent_replied")) + len(notices(desk, "status_changed"))
    assert after == before


def test_close_is_final(desk: Cli) -> None:
    """After close, status and reply are refused with a clear message and exit 1."""
    assert desk("tickets", "close", "1", "--as", "ann@example.com").exit_code == 0
    assert show(desk, 1)["status"] == "Closed"
    again = desk("tickets", "status", "1", "Open")
    assert again.exit_code == 1
    assert "ticket #1 is Closed" in again.output and "open a new ticket" in again.output
    assert desk("tickets", "reply", "1", "--file", "-", input="hi").exit_code == 1
    assert desk("tickets", "close", "1").exit_code == 1
    assert show(desk, 1)["status"] == "Closed"


def test_link_both_ways_even_when_closed(desk: Cli) -> None:
    """link joins two tickets both ways, also a closed one, and records who did it."""
    assert desk("tickets", "close", "1").exit_code == 0
    assert desk("tickets", "link", "2", "1", "--as", "ann@example.com").exit_code == 0
    assert show(desk, 2)["links"] == [{"number": 1, "kind": "related"}]
    assert show(desk, 1)["links"] == [{"number": 2, "kind": "related"}]
    assert show(desk, 2)["history"][-1]["actor"] == "ann@example.com"
    missing = desk("tickets", "link", "2", "99")
    assert missing.exit_code == 1 and "no ticket #99" in missing.output


def test_refusal_is_one_line_from_the_real_command(desk: Cli, tmp_path: Path) -> None:
    """As a real process, status on a closed ticket prints one mailgate: line and exits 1."""
    assert desk("tickets", "close", "2").exit_code == 0
    config = str(tmp_path / "mailgate.toml")
    proc = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", config, "tickets", "status", "2", "Open"],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("mailgate: ticket #2 is Closed.")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_due_dates_are_set_shown_recorded_and_refused_when_closed(desk: Cli) -> None:
    """tickets due sets follow-up and action-required dates (relative or ISO), shows them,
    records each change, clears with none; bad input and closed tickets are refused."""
    result = desk(
        "tickets", "due", "1", "--follow-up", "2d", "--action-required", "2099-01-31T14:00",
        "--as", "ann@example.com",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "action-required 2099-01-31T14:00:00+00:00" in result.output
    ticket = show(desk, 1)
    assert ticket["follow_up_at"] is not None
    assert ticket["action_required_at"] == "2099-01-31T14:00:00+00:00"
    changes = [(e["actor"], e["action"], e["field"]) for e in ticket["history"][-2:]]
    assert changes == [
        ("ann@example.com", "date", "follow_up"),
        ("ann@example.com", "date", "action_required"),
    ]
    assert desk("tickets", "due", "1", "--follow-up", "none").exit_code == 0
    assert show(desk, 1)["follow_up_at"] is None
    assert "action required    2099-01-31T14:00:00+00:00" in desk("tickets", "show", "1").output
    for args, message in (
        (("--follow-up", "soon"), "mailgate: cannot read 'soon' as a date"),
        (("--follow-up", "2001-01-01"), "the follow-up date 2001-01-01T00:00:00+00:00 is past"),
    ):
        bad = desk("tickets", "due", "1", *args)
        assert bad.exit_code == 1 and message in bad.output and "Traceback" not in bad.output
    assert desk("tickets", "due", "1").exit_code == 2  # nothing to set: a usage error
    assert desk("tickets", "close", "2").exit_code == 0
    closed = desk("tickets", "due", "2", "--action-required", "1d")
    assert closed.exit_code == 1 and "ticket #2 is Closed" in closed.output
