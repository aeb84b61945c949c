"""Status triggers (issue 20, item 4): the six-status flow of a ClickUp-based process end
to end through real mail and commands, trigger loops, closed tickets, a trigger that can
no longer apply, rules setting the first status, and check-config naming bad triggers.
SQLite files and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from mailgate.cli import cli as mailgate_cli
from mailgate.core import triggers
from mailgate.core.settings import TriggerSetting
from tests.conftest import SECRET
from tests.databases import migrate
from tests.mail import build

Cli = Callable[..., Result]

SIX_STATUSES = """
[tickets]
statuses = [
  { name = "Open", category = "new" },
  { name = "Pending", category = "active" },
  { name = "Needs Clarification", category = "waiting" },
  { name = "Planned", category = "active" },
  { name = "In Progress", category = "active" },
  { name = "Resolved", category = "closed" },
]
"""
# The flow's triggers, as config.example.toml carries them (commented).
FLOW_TRIGGERS = """
[[triggers]]
name = "acknowledged by the point of contact"
event = "agent_replied"
when = { from_status = "Open" }
set = { status = "Pending" }
[[triggers]]
name = "a due date plans it"
event = "due_date_set"
when = { status = ["Pending", "Needs Clarification"] }
set = { status = "Planned" }
[[triggers]]
name = "work starts"
event = "agent_replied"
when = { from_status = "Planned" }
set = { status = "In Progress" }
"""


def _desk(tmp_path: Path, db_url: str, extra: str) -> Cli:
    """A desk on ``db_url``: Acme's point of contact is Ann (account_owner assignment)."""
    migrate(db_url)
    config = tmp_path / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[security]\nsecret = "{SECRET}"\n'
        f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n'
        '[[teams]]\nname = "support"\nassignment = "account_owner"\n'
        '[[agents]]\nemail = "ann@example.com"\nname = "Ann"\nteams = ["support"]\n'
        '[[agents]]\nemail = "bob@example.com"\nname = "Bob"\nteams = ["support"]\n'
        '[[customers]]\nname = "Acme"\ndomains = ["acme.test"]\nowner = "ann@example.com"\n' + extra
    )

    def run(*args: str, input: bytes | str | None = None) -> Result:
        return CliRunner().invoke(mailgate_cli, ["--config", str(config), *args], input=input)

    return run


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def _show(cli: Cli, number: int) -> dict[str, Any]:
    return json.loads(_ok(cli("tickets", "show", str(number), "--json")))  # type: ignore[no-any-return]


def _mail(cli: Cli, tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "in.eml"
    path.write_bytes(raw)
    _ok(cli("ingest", str(path)))


def _fired(ticket: dict[str, Any]) -> list[tuple[str, str]]:
    """(trigger, event) of every trigger that fired on the ticket, in order."""
    return [
        (e["actor"].removeprefix("trigger:"), e["detail"]["event"])
        for e in ticket["history"]
        if e["action"] == "trigger"
    ]


def test_the_six_status_flow_through_mail_and_commands(db_url: str, tmp_path: Path) -> None:
    cli = _desk(tmp_path, db_url, SIX_STATUSES + FLOW_TRIGGERS)
    first = build(
        sender="Carol <carol@acme.test>",
        subject="The printer jams",
        body="Every page jams.\n",
        message_id="<jam-1@acme.test>",
    )
    _mail(cli, tmp_path, first)
    ticket = _show(cli, 1)
    assert (ticket["status"], ticket["assignee"]) == ("Open", "ann@example.com")

    # The point of contact acknowledges: Pending.
    _ok(
        cli(
            "tickets",
            "reply",
            "1",
            "--as",
            "ann@example.com",
            "--file",
            "-",
            input="We look into it.",
        )
    )
    ticket = _show(cli, 1)
    assert ticket["status"] == "Pending"
    assert _fired(ticket) == [("acknowledged by the point of contact", "agent_replied")]

    # The agent asks the customer: Needs Clarification, no trigger matches.
    _ok(
        cli(
            "tickets", "reply", "1", "--status", "Needs Clarification",
            "--as", "ann@example.com", "--file", "-", input="Which tray?",
        )
    )  # fmt: skip
    assert _show(cli, 1)["status"] == "Needs Clarification"

    # The customer answers by mail: back to Pending, where it was before the question.
    answer = build(
        sender="Carol <carol@acme.test>",
        subject="Re: [#1] The printer jams",
        body="Tray 2.\n",
        message_id="<jam-2@acme.test>",
        in_reply_to="<jam-1@acme.test>",
        references="<jam-1@acme.test>",
    )
    _mail(cli, tmp_path, answer)
    assert _show(cli, 1)["status"] == "Pending"

    # A due date plans it; the requester is told the status changed (content-free).
    _ok(cli("tickets", "due", "1", "--follow-up", "2d", "--as", "ann@example.com"))
    ticket = _show(cli, 1)
    assert ticket["status"] == "Planned"
    notices = json.loads(_ok(cli("notices", "list", "--json", "--limit", "0")))
    assert [n["recipient"] for n in notices if n["kind"] == "status_changed"] == ["carol@acme.test"]

    # The next answer starts the work; closing resolves it.
    _ok(
        cli(
            "tickets",
            "reply",
            "1",
            "--as",
            "ann@example.com",
            "--file",
            "-",
            input="Technician Monday.",
        )
    )
    assert _show(cli, 1)["status"] == "In Progress"
    _ok(cli("tickets", "close", "1", "--as", "ann@example.com"))
    ticket = _show(cli, 1)
    assert ticket["status"] == "Resolved"
    statuses = [e["new"] for e in ticket["history"] if e["field"] == "status"]
    assert statuses == [
        "Pending",  # the first answer (built in), which the trigger confirms
        "Needs Clarification",
        "Pending",
        "Planned",
        "In Progress",
        "Resolved",
    ]
    assert _fired(ticket) == [
        ("acknowledged by the point of contact", "agent_replied"),
        ("a due date plans it", "due_date_set"),
        ("work starts", "agent_replied"),
    ]


LOOPING = """
[[triggers]]
name = "priority sets type"
event = "priority_changed"
set = { type = "Technical" }
[[triggers]]
name = "type sets priority"
event = "type_changed"
set = { priority = "Low" }
[[triggers]]
name = "tag every status change"
event = "status_changed"
set = { tags = ["moved"] }
"""


def test_a_change_made_by_a_trigger_fires_no_trigger(db_url: str, tmp_path: Path) -> None:
    cli = _desk(tmp_path, db_url, LOOPING)
    _mail(cli, tmp_path, build(sender="carol@acme.test", subject="Loop?", body="Hi\n"))
    _ok(cli("tickets", "priority", "1", "High", "--as", "bob@example.com"))
    ticket = _show(cli, 1)
    # The first trigger set the type; the type change it made fired nothing.
    assert (ticket["priority"], ticket["type"]) == ("High", "Technical")
    assert _fired(ticket) == [("priority sets type", "priority_changed")]
    changed_by = [(e["field"], e["actor"]) for e in ticket["history"] if e["field"] in ("type",)]
    assert changed_by == [("type", "trigger:priority sets type")]

    # Closing is a status change, but a closed ticket fires nothing.
    _ok(cli("tickets", "close", "1"))
    ticket = _show(cli, 1)
    assert ticket["tags"] == [] and len(_fired(ticket)) == 1
    # Nor does mail to it: it is kept, and the ticket stays as it is.
    _mail(
        cli,
        tmp_path,
        build(sender="carol@acme.test", subject="Re: [#1] Loop?", body="Still there?\n"),
    )
    assert _show(cli, 1)["status"] == "Closed" and len(_fired(_show(cli, 1))) == 1


def test_a_trigger_that_cannot_apply_leaves_the_change_standing(
    db_url: str, tmp_path: Path
) -> None:
    extra = (
        '[[triggers]]\nname = "urgent to bob"\nevent = "priority_changed"\n'
        'when = { priority = "Urgent" }\nset = { assignee = "bob@example.com", tags = ["hot"] }\n'
    )
    cli = _desk(tmp_path, db_url, extra)
    _mail(cli, tmp_path, build(sender="carol@acme.test", subject="Fire", body="Hi\n"))
    _ok(cli("agents", "set", "bob@example.com", "--inactive"))
    _ok(cli("tickets", "priority", "1", "Urgent", "--as", "ann@example.com"))
    ticket = _show(cli, 1)
    assert ticket["priority"] == "Urgent"  # the agent's change stands
    assert (ticket["assignee"], ticket["tags"]) == ("ann@example.com", [])  # none of the trigger's
    failed = [e for e in ticket["history"] if e["action"] == "trigger_failed"]
    assert len(failed) == 1 and "no active agent" in failed[0]["detail"]["reason"]


def test_rules_set_the_first_status_and_created_fires_once(db_url: str, tmp_path: Path) -> None:
    extra = (
        SIX_STATUSES
        + '[[rules]]\nname = "outages start at once"\nwhen = { subject = "(?i)outage" }\n'
        'set = { status = "In Progress", priority = "Urgent" }\n'
        '[[triggers]]\nname = "urgent is vip"\nevent = "created"\n'
        'when = { priority = "Urgent", customer = "Acme" }\nset = { tags = ["vip"] }\n'
        '[[triggers]]\nname = "assigned to the point of contact"\nevent = "assigned"\n'
        'when = { assignee = "ann@example.com" }\nset = { tags = ["+poc"] }\n'
    )
    cli = _desk(tmp_path, db_url, extra)
    _mail(cli, tmp_path, build(sender="carol@acme.test", subject="Outage", body="All down\n"))
    _mail(cli, tmp_path, build(sender="carol@acme.test", subject="A question", body="Hi\n"))
    outage, question = _show(cli, 1), _show(cli, 2)
    assert (outage["status"], outage["tags"]) == ("In Progress", ["vip", "poc"])
    assert _fired(outage) == [
        ("urgent is vip", "created"),
        ("assigned to the point of contact", "assigned"),
    ]
    assert (question["status"], question["tags"]) == ("Open", ["poc"])


def test_triggers_fire_from_the_api_and_the_portal(db_url: str) -> None:
    """The same triggers, whichever channel made the change (PATCH, a portal form)."""
    import dataclasses

    from mailgate.web import api_tokens
    from tests.web_support import _show as show
    from tests.web_support import form, make_site, sign_in_agent

    def with_triggers(settings: Any) -> Any:
        return dataclasses.replace(
            settings,
            triggers=(
                TriggerSetting("high goes to bob", "priority_changed", {"priority": "High"},
                               {"assignee": "bob@example.com"}),
                TriggerSetting("tagged waiting", "tags_changed", {"tags": "blocked"},
                               {"status": "Waiting"}),
            ),
        )  # fmt: skip

    site = make_site(db_url, adjust=with_triggers)
    try:
        number = site.numbers["dave"]
        with site.store.transaction() as session:
            token = api_tokens.add(session, "crm", site.clock())
        patched = site.client().patch(
            f"/api/tickets/{number}",
            headers={"Authorization": f"Bearer {token}"},
            json={"priority": "High"},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["assignee"] == "bob@example.com"
        client = sign_in_agent(site)
        page = f"/tickets/{number}"
        sent = form(client, f"/agent/tickets/{number}/tags", page, add="blocked")
        assert sent.status_code == 303, sent.text
        ticket = show(site, number)
        assert ticket["status"] == "Waiting"
        assert [e["actor"] for e in ticket["history"] if e["action"] == "trigger"] == [
            "trigger:high goes to bob",
            "trigger:tagged waiting",
        ]
        # Set on tags_changed, the status is told to the requester like any status change.
        assert [n.recipient for n in site.notices("status_changed")] == ["dave@acme.test"]
    finally:
        site.store.engine.dispose()


def test_check_config_names_each_bad_trigger(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "mailgate.toml"
    config.write_text(
        config.read_text()
        + '[[triggers]]\nname = "t1"\nevent = "reopened"\nset = { status = "Open" }\n'
        '[[triggers]]\nname = "t2"\nevent = "created"\nwhen = { status = "Sleeping" }\n'
        'set = { colour = "red", status = "Gone" }\n'
        '[[triggers]]\nname = "t3"\nevent = "assigned"\nset = {}\n'
    )
    result = cli("check-config")
    assert result.exit_code != 0
    where = str(config)
    for line in (
        f"{where}: triggers[0] ('t1').event: unknown event 'reopened'",
        f"{where}: triggers[1] ('t2').when.status: unknown status 'Sleeping'",
        f"{where}: triggers[1] ('t2').set.colour: unknown field",
        f"{where}: triggers[1] ('t2').set.status: unknown status 'Gone'",
        f"{where}: triggers[2] ('t3').set: expected at least one of",
    ):
        assert line in result.output, (line, result.output)


@pytest.mark.parametrize(
    ("when", "fires"),
    [
        ({}, True),
        ({"status": ["Open", "Pending"]}, True),
        ({"status": "Closed"}, False),
        ({"from_status": "New"}, True),
        ({"team": "none"}, True),
        ({"assignee": "Ann@Example.com"}, True),
        ({"tags": ["a", "b"]}, True),
        ({"tags": ["a", "c"]}, False),
        ({"customer": "Acme", "priority": "High"}, False),
    ],
)
def test_conditions(when: dict[str, Any], fires: bool) -> None:
    state = triggers.TicketState(
        status="Open",
        from_status="New",
        priority="Normal",
        type="General",
        team="",
        customer="Acme",
        assignee="ann@example.com",
        tags=("a", "b"),
    )
    trigger = TriggerSetting("t", "created", when, {"status": "Pending"})
    assert triggers.matches(trigger, "created", state) is fires
    assert not triggers.matches(trigger, "assigned", state)
    assert triggers.tag_changes(["x", "+y", "-z"]) == (("x", "y"), ("z",))
