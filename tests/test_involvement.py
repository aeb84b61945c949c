"""Owner and helpers, several departments (issue 22, items 1 and 2): through the CLI,
the agent portal (with CSRF) and the API's PATCH, helpers told of customer replies
(content-free), least_open weighing owners only. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailgate.cli import cli as mailgate_cli
from mailgate.core.settings import AgentSetting, TeamSetting
from mailgate.tickets import changes, involvement
from mailgate.tickets.actors import Actor
from mailgate.web import api_tokens
from tests.conftest import SECRET
from tests.databases import migrate
from tests.mail import build
from tests.web_support import Site, _show, form, make_site, sign_in_agent


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url)
    yield s
    s.store.engine.dispose()


def _cli(tmp_path: Path, db_url: str, extra: str = ""):  # type: ignore[no-untyped-def]
    migrate(db_url)
    config = tmp_path / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[security]\nsecret = "{SECRET}"\n'
        f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n'
        '[[teams]]\nname = "support"\nassignment = "none"\n'
        '[[teams]]\nname = "billing"\nassignment = "none"\n'
        '[[agents]]\nemail = "ann@example.com"\nname = "Ann"\nteams = ["support"]\n'
        '[[agents]]\nemail = "bob@example.com"\nname = "Bob"\nteams = ["support"]\n'
        '[[agents]]\nemail = "cid@example.com"\nname = "Cid"\nteams = ["billing"]\n' + extra
    )

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(mailgate_cli, ["--config", str(config), *args], input=input)

    return run


def test_helpers_and_departments_from_the_cli(db_url: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path, db_url)
    mail = tmp_path / "m.eml"
    mail.write_bytes(build(sender="carol@customer.test", subject="Help", body="Hi\n"))
    assert cli("ingest", str(mail)).exit_code == 0
    assert cli("tickets", "assign", "1", "ann@example.com").exit_code == 0
    added = cli(
        "tickets", "helpers", "1", "+bob@example.com", "cid@example.com", "--as", "ann@example.com"
    )
    assert added.output == "ticket #1 helpers: bob@example.com, cid@example.com\n", added.output
    removed = cli("tickets", "helpers", "1", "-cid@example.com")
    assert removed.output == "ticket #1 helpers: bob@example.com\n"
    for args, says in (
        (("+ann@example.com",), "ann@example.com owns ticket #1: the owner is not a helper"),
        (("+nobody@example.com",), "no active agent 'nobody@example.com'"),
        (("-cid@example.com",), "cid@example.com does not help on ticket #1"),
    ):
        refused = cli("tickets", "helpers", "1", *args)
        assert (refused.exit_code, says in refused.output) == (1, True), refused.output
    assert (
        cli("tickets", "departments", "1", "+billing").output == "ticket #1 departments: billing\n"
    )
    own = cli("tickets", "departments", "1", "+support")
    assert own.exit_code == 1 and "its owning department" in own.output
    unknown = cli("tickets", "departments", "1", "+legal")
    assert unknown.exit_code == 1 and "no team 'legal'" in unknown.output
    shown = json.loads(cli("tickets", "show", "1", "--json").output)
    assert (shown["helpers"], shown["departments"]) == (["bob@example.com"], ["billing"])
    history = [(e["actor"], e["action"], e["new"]) for e in shown["history"]]
    assert ("ann@example.com", "helpers", "bob@example.com,cid@example.com") in history
    assert ("cli", "departments", "billing") in history
    assert cli("tickets", "close", "1").exit_code == 0
    closed = cli("tickets", "helpers", "1", "+cid@example.com")
    assert closed.exit_code == 1 and "is Closed" in closed.output
    # Naming what is there already changes nothing: allowed on a closed ticket too.
    assert cli("tickets", "helpers", "1", "+bob@example.com").exit_code == 0


def test_helpers_are_told_of_customer_replies(site: Site) -> None:
    number = site.numbers["dave"]
    client = sign_in_agent(site)
    page = f"/tickets/{number}"
    assert (
        form(
            client, f"/agent/tickets/{number}/assign", page, assignee="ann@example.com"
        ).status_code
        == 303
    )
    sent = form(client, f"/agent/tickets/{number}/helpers", page, add="bob@example.com")
    assert sent.status_code == 303, sent.text
    assert "bob@example.com" in client.get(page).text
    site.ingest(
        build(
            sender="Dave <dave@acme.test>",
            subject=f"Re: [#{number}] VPN is down",
            body="Still down.\n",
        )
    )
    told = sorted(n.recipient for n in site.notices("customer_replied"))
    assert told == ["ann@example.com", "bob@example.com"]
    # The ticked helper goes; the next reply tells the owner only.
    gone = form(client, f"/agent/tickets/{number}/helpers", page, remove="bob@example.com")
    assert gone.status_code == 303
    assert _show(site, number)["helpers"] == []


def test_notify_helpers_false_tells_the_owner_only(db_url: str) -> None:
    def quiet(settings):  # type: ignore[no-untyped-def]
        return dataclasses.replace(
            settings, tickets=dataclasses.replace(settings.tickets, notify_helpers=False)
        )

    site = make_site(db_url, adjust=quiet)
    try:
        number = site.numbers["eve"]
        with site.store.transaction() as session:
            token = api_tokens.add(session, "crm", site.clock())
        headers = {"Authorization": f"Bearer {token}"}
        patched = site.client().patch(
            f"/api/tickets/{number}",
            headers=headers,
            json={
                "assignee": "ann@example.com",
                "helpers": ["bob@example.com"],
                "departments": ["billing"],
            },
        )
        assert patched.status_code == 200, patched.text
        detail = site.client().get(f"/api/tickets/{number}", headers=headers).json()
        assert (detail["helpers"], detail["departments"]) == (["bob@example.com"], ["billing"])
        owner = site.client().patch(
            f"/api/tickets/{number}", headers=headers, json={"helpers": ["ann@example.com"]}
        )
        assert owner.status_code == 409 and "the owner is not a helper" in owner.text
        site.ingest(
            build(sender="eve@globex.test", subject=f"Re: [#{number}] Invoice wrong", body="?\n")
        )
        assert [n.recipient for n in site.notices("customer_replied")] == ["ann@example.com"]
    finally:
        site.store.engine.dispose()


def test_least_open_weighs_owners_only(db_url: str) -> None:
    """Ann helps on two open tickets and owns none; Bob owns one: the next goes to Ann."""

    def least_open(settings):  # type: ignore[no-untyped-def]
        return dataclasses.replace(
            settings,
            teams=(TeamSetting("support", "least_open"),),
            agents=(
                AgentSetting("ann@example.com", "Ann", ("support",)),
                AgentSetting("bob@example.com", "Bob", ("support",)),
            ),
        )

    site = make_site(db_url, seed=False, adjust=least_open)
    try:
        first = site.ingest(build(sender="dave@acme.test", subject="One", body="1\n"))
        second = site.ingest(build(sender="dave@acme.test", subject="Two", body="2\n"))
        with site.store.transaction() as session:
            actor = Actor("cli")
            # Bob owns one; the other is nobody's. Were helping counted, Ann (2) would
            # weigh more than Bob (1) and the next ticket would go to Bob.
            for number, owner in ((first, "bob@example.com"), (second, None)):
                changes.assign(
                    session, settings=site.settings, number=number, actor=actor,
                    assignee=owner, at=site.clock(),
                )  # fmt: skip
                involvement.set_helpers(
                    session, settings=site.settings, number=number, actor=actor,
                    add=["ann@example.com"], at=site.clock(),
                )  # fmt: skip
        third = site.ingest(build(sender="dave@acme.test", subject="Three", body="3\n"))
        assert _show(site, third)["assignee"] == "ann@example.com"
    finally:
        site.store.engine.dispose()
