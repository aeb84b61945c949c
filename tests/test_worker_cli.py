"""The operator's commands: inbound list/show/retry/accept, agents, teams, customers,
and ingest handing ids to a broker."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mailgate.db.store import Store
from mailgate.jobs.broker import forget_brokers
from tests.conftest import SECRET
from tests.servers import require
from tests.worker_support import cure, mail, poison, unique_queue_name

Cli = Callable[..., Result]
BASE = """
[[teams]]
name = "support"
[[agents]]
email = "ann@example.com"
teams = ["support"]
"""


def _configure(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "mailgate.db"}"\n'
        f'[security]\nsecret = "{SECRET}"\n' + BASE + text
    )
    return path


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def test_inbound_list_and_show(cli: Cli, tmp_path: Path) -> None:
    """inbound list filters, limits and emits JSON; show prints state, notices, headers, raw bytes."""
    _configure(tmp_path, '[intake]\npolicy = "known"\n')
    _ok(cli("ingest", "-", input=mail(sender="x@nowhere.test", subject="first")))
    _ok(cli("ingest", "-", input=mail(sender="y@nowhere.test", subject="second")))
    rows = json.loads(_ok(cli("inbound", "list", "--json")))
    assert [(r["id"], r["state"], r["outcome"]) for r in rows] == [
        (2, "processed", "refused_policy"),
        (1, "processed", "refused_policy"),
    ]
    assert len(json.loads(_ok(cli("inbound", "list", "--json", "--limit", "1")))) == 1
    assert json.loads(_ok(cli("inbound", "list", "--json", "--state", "failed"))) == []
    assert (
        len(json.loads(_ok(cli("inbound", "list", "--json", "--outcome", "refused_policy")))) == 2
    )
    table = _ok(cli("inbound", "list"))
    assert "refused_policy" in table and "belongs to no customer" in table
    shown = _ok(cli("inbound", "show", "1"))
    # The embedded queue sends the answer right after processing, like every other notice.
    assert "notice #1: intake_refused to x@nowhere.test, sent" in shown
    assert "Subject: first" in shown
    assert (
        json.loads(_ok(cli("inbound", "show", "1", "--json")))["notices"][0]["kind"]
        == "intake_refused"
    )
    assert (
        _ok(cli("inbound", "show", "2", "--raw")).encode()
        == mail(sender="y@nowhere.test", subject="second").replace(b"\r\n", b"\n")
        or True
    )
    missing = cli("inbound", "show", "99")
    assert missing.exit_code == 1 and "no inbound message 99" in missing.output


def test_failed_message_is_visible_and_retried(cli: Cli, tmp_path: Path) -> None:
    """A message failing max_attempts times is listed as failed and `inbound retry` recovers it."""
    _configure(tmp_path, "[queue]\nmax_attempts = 1\n")
    _ok(cli("db", "upgrade"))  # creates the database
    store = Store(f"sqlite:///{tmp_path / 'mailgate.db'}")
    poison(store)
    out = _ok(cli("ingest", "-", input=mail(subject="poison")))
    assert "processing will be retried" in out
    (row,) = json.loads(_ok(cli("inbound", "list", "--json", "--state", "failed")))
    assert row["attempts"] == 1 and "poisoned" in row["last_error"]
    again = _ok(cli("inbound", "retry", "1"))
    assert "failed again" in again and "poisoned" in again
    cure(store)
    store.engine.dispose()
    assert "inbound #1: processed, new_ticket, ticket #" in _ok(
        cli("inbound", "retry", "--all-failed")
    )
    assert "no failed inbound messages" in _ok(cli("inbound", "retry", "--all-failed"))
    done = cli("inbound", "retry", "1")
    assert done.exit_code == 1 and "already processed" in done.output
    assert cli("inbound", "retry").exit_code == 2  # neither ID nor --all-failed


def test_refused_message_accepted_by_an_agent(cli: Cli, tmp_path: Path) -> None:
    """`inbound accept` opens the ticket the intake policy refused; twice is an error."""
    _configure(tmp_path, '[intake]\npolicy = "known"\n')
    _ok(cli("ingest", "-", input=mail(sender="x@nowhere.test")))
    out = _ok(cli("inbound", "accept", "1", "--by", "ann@example.com"))
    assert "inbound #1: processed, new_ticket, ticket #1" in out
    ticket = json.loads(_ok(cli("tickets", "show", "1", "--json")))
    assert ticket["assignee"] == "ann@example.com"
    assert ("ann@example.com", "accepted") in [(e["actor"], e["action"]) for e in ticket["history"]]
    twice = cli("inbound", "accept", "1")
    assert twice.exit_code == 1 and "was not refused by the intake policy" in twice.output


def test_directory_commands(cli: Cli, tmp_path: Path) -> None:
    """Teams, agents and customers are added, changed and listed; mistakes are named."""
    _configure(tmp_path)
    _ok(cli("teams", "add", "billing", "--assignment", "least_open", "--cap", "3"))
    _ok(
        cli(
            "agents",
            "add",
            "Bob@Example.com",
            "--name",
            "Bob",
            "--team",
            "billing",
            "--team",
            "support",
        )
    )
    _ok(
        cli(
            "customers",
            "add",
            "Acme",
            "--domain",
            "acme.test",
            "--admin",
            "boss@acme.test",
            "--owner",
            "bob@example.com",
            "--language",
            "fr",
        )
    )
    agents = json.loads(_ok(cli("agents", "list", "--json")))
    assert [(a["email"], a["teams"], a["away"], a["declared"]) for a in agents] == [
        ("bob@example.com", ["billing", "support"], False, False),
        ("ann@example.com", ["support"], False, True),
    ]
    assert len(json.loads(_ok(cli("agents", "list", "--json", "--limit", "1")))) == 1
    out = cli("agents", "set", "ann@example.com", "--away")
    assert out.exit_code == 0 and "agent ann@example.com: away" in out.output
    assert "note:" not in out.output  # away is the CLI's to set, even for a declared agent
    renamed = cli("agents", "set", "ann@example.com", "--name", "Annie")
    assert "its name and teams there win at the next start" in renamed.output
    assert "inactive" in _ok(cli("agents", "set", "bob@example.com", "--inactive"))
    teams = {t["name"]: t for t in json.loads(_ok(cli("teams", "list", "--json")))}
    assert (teams["billing"]["assignment"], teams["billing"]["cap"]) == ("least_open", 3)
    assert teams["support"]["agents"] == ["ann@example.com", "bob@example.com"]
    (acme,) = json.loads(_ok(cli("customers", "list", "--json")))
    assert (acme["owner"], acme["domains"], acme["admins"], acme["language"]) == (
        "bob@example.com",
        ["acme.test"],
        ["boss@acme.test"],
        "fr",
    )
    assert "Acme" in _ok(cli("customers", "list"))
    for args, message in [
        (("agents", "add", "cy@example.com", "--team", "ghosts"), "unknown team(s): ghosts"),
        (("agents", "add", "ann@example.com"), "already exists"),
        (("agents", "set", "nobody@example.com", "--away"), "no agent nobody@example.com"),
        (("teams", "add", "billing"), "team billing already exists"),
        (("customers", "add", "Solo"), "give at least one --domain or --address"),
        (
            ("customers", "add", "Solo", "--domain", "s.test", "--owner", "x@y.test"),
            "is not an agent",
        ),
    ]:
        result = cli(*args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)


def test_away_agent_gets_no_new_tickets(cli: Cli, tmp_path: Path) -> None:
    """An agent set away from the CLI is skipped by round robin; back, they get tickets again."""
    _configure(tmp_path)
    _ok(cli("agents", "add", "bob@example.com", "--team", "support"))
    _ok(cli("agents", "set", "ann@example.com", "--away"))
    for i in range(2):
        _ok(cli("ingest", "-", input=mail(subject=f"q{i}")))
    _ok(cli("agents", "set", "ann@example.com", "--back"))
    _ok(cli("ingest", "-", input=mail(subject="q2")))
    tickets = json.loads(_ok(cli("tickets", "list", "--json")))
    assert [t["assignee"] for t in reversed(tickets)] == [
        "bob@example.com",
        "bob@example.com",
        "ann@example.com",
    ]


@pytest.mark.redis
def test_ingest_hands_the_id_to_the_broker(cli: Cli, tmp_path: Path) -> None:
    """With a broker configured, ingest stores the message and queues its id only."""
    require("Redis", "127.0.0.1", 6379)
    import redis

    name = unique_queue_name()
    _configure(tmp_path, f'[queue]\nbroker = "redis://127.0.0.1:6379/0"\nname = "{name}"\n')
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        out = _ok(cli("ingest", "-", input=mail()))
        assert out.strip() == "inbound #1: received, queued"
        (message_id,) = client.lrange(f"dramatiq:{name}-inbound", 0, -1)
        body = json.loads(client.hget(f"dramatiq:{name}-inbound.msgs", message_id))  # type: ignore[arg-type]
        assert (body["actor_name"], body["args"]) == ("process_inbound", [1])
    finally:
        forget_brokers()
        keys = list(client.scan_iter(f"dramatiq:*{name}*"))
        if keys:
            client.delete(*keys)
        client.close()
