"""Queue views (issue 20, item 5) and where helpers and departments find their tickets
(issue 22, items 1 and 2): the same filters and sorts in `tickets list`, `GET
/api/tickets` and the agent queue, with counts beside the queue. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mailgate.cli import cli as mailgate_cli
from mailgate.tickets import changes, fields, involvement
from mailgate.tickets.actors import Actor
from mailgate.web import api_tokens
from tests.conftest import SECRET
from tests.web_support import Site, make_site, sign_in_agent


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    """Seeded: carol (Acme), dave (Acme), eve (Globex), all New in team support. Then
    carol is High, tagged vpn, owned by Ann with Bob helping and billing involved, with a
    follow-up in 2 days; eve is Urgent, Bob's, with a follow-up in 1 day; dave waits."""
    s = make_site(db_url)
    carol, dave, eve = s.numbers["carol"], s.numbers["dave"], s.numbers["eve"]
    cli = Actor("cli")
    at = s.clock()
    with s.store.transaction() as session:
        common: dict[str, Any] = {"settings": s.settings, "actor": cli, "at": at}
        fields.apply_fields(
            session,
            number=carol,
            fields={"priority": "High", "tags": ["vpn"], "assignee": "ann@example.com"},
            **common,
        )
        involvement.set_helpers(session, number=carol, add=["bob@example.com"], **common)
        involvement.set_departments(session, number=carol, add=["billing"], **common)
        changes.set_dates(
            session, number=carol, dates={"follow_up": at + timedelta(days=2)}, **common
        )
        fields.apply_fields(
            session,
            number=eve,
            fields={"priority": "Urgent", "assignee": "bob@example.com"},
            **common,
        )
        changes.set_dates(
            session, number=eve, dates={"follow_up": at + timedelta(days=1)}, **common
        )
        changes.change_status(session, number=dave, status="Waiting", **common)
    yield s
    s.store.engine.dispose()


_TOKENS = iter(range(1_000_000))


def _api(site: Site, query: str, agent: str | None = None) -> Any:
    with site.store.transaction() as session:
        token = api_tokens.add(session, f"t{next(_TOKENS)}", site.clock(), agent=agent)
    return site.client().get(f"/api/tickets?{query}", headers={"Authorization": f"Bearer {token}"})


def _numbers(rows: list[dict[str, Any]]) -> list[int]:
    return [r["number"] for r in rows]


def test_the_api_filters_and_sorts(site: Site) -> None:
    carol, dave, eve = site.numbers["carol"], site.numbers["dave"], site.numbers["eve"]
    for query, expected in (
        ("", [eve, dave, carol]),
        ("status=waiting", [dave]),  # a category
        ("status=Waiting", [dave]),
        ("status=open&priority=High", [carol]),
        ("type=General&assignee=none", [dave]),
        ("assignee=ann@example.com", [carol]),
        ("team=billing", [carol]),  # a department finds it
        ("team=support", [eve, dave, carol]),
        ("tag=vpn", [carol]),
        ("customer=Globex", [eve]),
        ("due_before=2026-01-06T12:00:00%2B00:00", [eve]),
        ("sort=priority", [eve, carol, dave]),
        ("sort=due", [eve, carol, dave]),  # no date last
    ):
        answer = _api(site, query)
        assert answer.status_code == 200, (query, answer.text)
        assert _numbers(answer.json()) == expected, query
    mine = _api(site, "assignee=me", agent="bob@example.com")
    assert _numbers(mine.json()) == [eve, carol]  # owned and helped on
    for query, says in (
        ("assignee=me", "'me' needs an agent"),
        ("team=legal", "no team 'legal'"),
        ("status=Sleeping", "unknown status 'Sleeping'"),
        ("due_before=0.5", "RFC 3339"),
    ):
        refused = _api(site, query)
        assert refused.status_code in (400, 422) and says in refused.text, (query, refused.text)


def test_the_agent_queue_filters_counts_and_my_tickets(site: Site) -> None:
    carol, eve = site.numbers["carol"], site.numbers["eve"]
    bob = sign_in_agent(site, "bob@example.com")
    mine = bob.get("/agent?assignee=me")
    assert mine.status_code == 200
    assert f'href="/tickets/{carol}"' in mine.text and f'href="/tickets/{eve}"' in mine.text
    assert "Open by status:" in mine.text and ">New 2</a>" in mine.text
    assert ">bob@example.com 1</a>" in mine.text  # eve's; carol counts under Ann
    urgent = bob.get("/agent?sort=priority&priority=Urgent&status=all")
    assert f'href="/tickets/{eve}"' in urgent.text and f'href="/tickets/{carol}"' not in urgent.text
    assert '<option value="Urgent" selected>' in urgent.text
    wrong = bob.get("/agent?team=legal")
    assert wrong.status_code == 400 and "no team &#39;legal&#39;" in wrong.text


def test_tickets_list_from_the_cli(site: Site, tmp_path: Path) -> None:
    carol, dave, eve = site.numbers["carol"], site.numbers["dave"], site.numbers["eve"]
    config = tmp_path / "cli.toml"
    config.write_text(
        f'[database]\nurl = "{site.settings.database.url}"\n[security]\nsecret = "{SECRET}"\n'
        '[[teams]]\nname = "support"\nassignment = "none"\n'
        '[[teams]]\nname = "billing"\nassignment = "none"\n'
    )

    def listed(*args: str) -> list[int]:
        result = CliRunner().invoke(
            mailgate_cli, ["--config", str(config), "tickets", "list", "--json", *args]
        )
        assert result.exit_code == 0, result.output
        return _numbers(json.loads(result.stdout))

    assert listed() == [eve, dave, carol]
    assert listed("--team", "billing") == [carol]
    assert listed("--assignee", "me", "--as", "bob@example.com") == [eve, carol]
    assert listed("--status", "waiting") == [dave]
    assert listed("--sort", "priority", "--status", "open") == [eve, carol, dave]
    assert listed("--tag", "vpn", "--customer", "Acme") == [carol]
    bad = CliRunner().invoke(
        mailgate_cli, ["--config", str(config), "tickets", "list", "--customer", "Initech"]
    )
    assert (bad.exit_code, bad.output) == (1, "mailgate: no customer account 'Initech'\n")
