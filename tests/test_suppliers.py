"""Suppliers (issue 22, item 3): declared in the config and added by the CLI, attached to
tickets through the CLI, the agent portal (with CSRF) and the API's PATCH; a supplier's
mail threads to its ticket as a supplier message that leaves a waiting ticket waiting
and that customers never see; agents write to a supplier, which gets content-free
notices. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from mailgate.cli import cli as mailgate_cli
from mailgate.core.config import inspect
from mailgate.core.settings import Settings, SupplierSetting
from mailgate.db.models import StoredAttachment, TicketMessage
from mailgate.tickets import changes, messages
from mailgate.tickets import suppliers as supplier_side
from mailgate.tickets.actors import Actor
from mailgate.web import api_tokens
from tests.conftest import SECRET
from tests.databases import migrate
from tests.mail import build
from tests.web_support import Site, _show, form, make_site, sign_in_agent, sign_in_customer

PARTS = SupplierSetting("Parts Co", ("orders@parts.test", "Help@Parts.test"), "fr")


def _with_suppliers(settings: Settings) -> Settings:
    return dataclasses.replace(settings, suppliers=(PARTS,))


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url, adjust=_with_suppliers)
    yield s
    s.store.engine.dispose()


def _cli(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    migrate(db_url)
    config = tmp_path / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[security]\nsecret = "{SECRET}"\n'
        f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n'
        '[[teams]]\nname = "support"\nassignment = "none"\n'
        '[[agents]]\nemail = "ann@example.com"\nname = "Ann"\nteams = ["support"]\n'
        '[[suppliers]]\nname = "Parts Co"\naddresses = ["Orders@Parts.test"]\nlanguage = "fr"\n'
    )

    def run(*args: str) -> Result:
        return CliRunner().invoke(mailgate_cli, ["--config", str(config), *args])

    return run


def test_config_checks_suppliers(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        f'[security]\nsecret = "{SECRET}"\n'
        '[[suppliers]]\nname = "A"\naddresses = ["not an address"]\nlanguage = "French"\n'
        '[[suppliers]]\nname = "A"\n'
    )
    problems = "\n".join(inspect(config, env={})[1])
    assert "suppliers[0].addresses[0]: expected an email address" in problems
    assert "suppliers[0].language: expected a language code" in problems
    assert "suppliers[1].name: duplicate supplier 'A'" in problems
    assert "suppliers[1].addresses: expected at least one email address" in problems


def test_suppliers_from_the_config_and_the_cli(db_url: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path, db_url)
    listed = json.loads(cli("suppliers", "list", "--json").output)
    assert [(s["name"], s["addresses"], s["language"], s["declared"]) for s in listed] == [
        ("Parts Co", ["orders@parts.test"], "fr", True)
    ]
    added = cli("suppliers", "add", "Cables Ltd", "--address", "Sales@Cables.test")
    assert added.exit_code == 0 and added.output == "supplier Cables Ltd added\n", added.output
    again = cli("suppliers", "add", "Cables Ltd", "--address", "x@cables.test")
    assert again.exit_code == 1 and "supplier Cables Ltd already exists" in again.output
    none = cli("suppliers", "add", "Nobody")
    assert none.exit_code == 1 and "give at least one --address" in none.output
    table = cli("suppliers", "list").output
    assert "Cables Ltd" in table and "sales@cables.test" in table
    mail = tmp_path / "m.eml"
    mail.write_bytes(build(sender="carol@customer.test", subject="Help", body="Hi\n"))
    assert cli("ingest", str(mail)).exit_code == 0
    attached = cli(
        "tickets", "suppliers", "1", "+Parts Co", "+Cables Ltd", "--as", "ann@example.com"
    )
    assert attached.output == "ticket #1 suppliers: Cables Ltd, Parts Co\n", attached.output
    detached = cli("tickets", "suppliers", "1", "-Cables Ltd")
    assert detached.output == "ticket #1 suppliers: Parts Co\n"
    for args, says in (
        (("+Nope",), "no supplier 'Nope'"),
        (("-Cables Ltd",), "supplier 'Cables Ltd' is not attached to ticket #1"),
    ):
        refused = cli("tickets", "suppliers", "1", *args)
        assert (refused.exit_code, says in refused.output) == (1, True), refused.output
    shown = json.loads(cli("tickets", "show", "1", "--json").output)
    assert shown["suppliers"] == ["Parts Co"]
    history = [(e["actor"], e["action"], e["new"]) for e in shown["history"]]
    assert ("ann@example.com", "suppliers", "Cables Ltd,Parts Co") in history
    assert ("cli", "suppliers", "Parts Co") in history
    assert cli("tickets", "close", "1").exit_code == 0
    closed = cli("tickets", "suppliers", "1", "+Cables Ltd")
    assert closed.exit_code == 1 and "is Closed" in closed.output


def test_suppliers_from_the_portal_and_the_api(site: Site) -> None:
    number = site.numbers["dave"]
    client = sign_in_agent(site)
    page = f"/tickets/{number}"
    assert "Attach a supplier" in client.get(page).text
    sent = form(client, f"/agent/tickets/{number}/suppliers", page, add="Parts Co")
    assert sent.status_code == 303, sent.text
    assert _show(site, number)["suppliers"] == ["Parts Co"]
    # No CSRF token: refused, nothing changes.
    bare = client.post(f"/agent/tickets/{number}/suppliers", data={"remove": "Parts Co"})
    assert bare.status_code == 403
    gone = form(client, f"/agent/tickets/{number}/suppliers", page, remove="Parts Co")
    assert gone.status_code == 303 and _show(site, number)["suppliers"] == []
    with site.store.transaction() as session:
        token = api_tokens.add(session, "crm", site.clock())
    headers = {"Authorization": f"Bearer {token}"}
    api = site.client()
    patched = api.patch(f"/api/tickets/{number}", headers=headers, json={"suppliers": ["Parts Co"]})
    assert patched.status_code == 200, patched.text
    assert api.get(f"/api/tickets/{number}", headers=headers).json()["suppliers"] == ["Parts Co"]
    unknown = api.patch(f"/api/tickets/{number}", headers=headers, json={"suppliers": ["X"]})
    assert unknown.status_code == 400 and "no supplier 'X'" in unknown.text
    schema = api.get("/api/openapi.json").json()
    enum = schema["components"]["schemas"]["TicketPatch"]["properties"]["suppliers"]
    assert enum["anyOf"][0]["items"]["enum"] == ["Parts Co"]


def _attach_and_wait(site: Site, number: int) -> None:
    """Ann owns ``number``, Parts Co is attached, and it waits on the customer."""
    with site.store.transaction() as session:
        actor, at = Actor("cli"), site.clock()
        changes.assign(
            session, settings=site.settings, number=number, actor=actor,
            assignee="ann@example.com", at=at,
        )  # fmt: skip
        supplier_side.set_suppliers(
            session, settings=site.settings, number=number, actor=actor, add=["Parts Co"], at=at
        )
        changes.change_status(
            session, settings=site.settings, number=number, actor=actor, status="Waiting", at=at
        )


def test_supplier_mail_threads_without_moving_a_waiting_ticket(site: Site) -> None:
    number = site.numbers["dave"]
    _attach_and_wait(site, number)
    # The supplier takes no part in the conversation, but is attached: the subject tag
    # threads its mail there, as the supplier side.
    site.ingest(
        build(
            sender="Parts Desk <Help@Parts.test>",
            subject=f"Re: [#{number}] VPN is down",
            body="SUPPLIERSECRET: the part ships Friday.\n",
            attachments=[("quote.pdf", "application/pdf", b"%PDF-1.4 QUOTE")],
        )
    )
    shown = _show(site, number)
    assert shown["status"] == "Waiting"
    assert [p["email"] for p in shown["participants"]] == ["dave@acme.test"]
    last = shown["messages"][-1]
    assert (last["direction"], last["from"]) == ("supplier", "help@parts.test")
    actions = [(e["actor"], e["action"]) for e in shown["history"]]
    assert ("help@parts.test", "supplier_message") in actions
    assert ("help@parts.test", "customer_reply") not in actions
    told = [n.recipient for n in site.notices("supplier_replied")]
    assert told == ["ann@example.com"]
    assert site.notices("customer_replied") == [] and site.notices("acknowledgement") == []
    # The agent sees it; the customer sees neither the message, nor its file, nor finds
    # it by searching.
    agent_page = sign_in_agent(site).get(f"/tickets/{number}").text
    assert "SUPPLIERSECRET" in agent_page and "from a supplier" in agent_page
    customer = sign_in_customer(site, "dave@acme.test")
    page = customer.get(f"/tickets/{number}")
    assert page.status_code == 200 and "SUPPLIERSECRET" not in page.text
    assert "No VPN since 9am" in page.text
    with site.store.transaction() as session:
        file_id = session.scalar(
            select(StoredAttachment.id)
            .join(TicketMessage)
            .where(TicketMessage.direction == "supplier")
        )
    assert customer.get(f"/tickets/{number}/attachments/{file_id}").status_code == 404
    found = customer.get("/tickets", params={"q": "SUPPLIERSECRET"})
    assert found.status_code == 200 and f"#{number}" not in found.text
    assert f"/tickets/{number}" in customer.get("/tickets", params={"q": "VPN"}).text
    # Still the customer's answer moves the wait as before.
    site.ingest(
        build(sender="dave@acme.test", subject=f"Re: [#{number}] VPN is down", body="Thanks\n")
    )
    assert _show(site, number)["status"] == "Open"


def test_mail_from_a_supplier_not_attached_is_handled_as_today(site: Site) -> None:
    number = site.numbers["dave"]
    new = site.ingest(
        build(sender="orders@parts.test", subject=f"Re: [#{number}] VPN is down", body="Hi\n")
    )
    assert new != number  # a stranger to #number: a new ticket, linked to it
    shown = _show(site, new)
    assert shown["requester"] == "orders@parts.test"
    assert shown["messages"][0]["direction"] == "inbound"


def test_agents_write_to_a_supplier(site: Site) -> None:
    number = site.numbers["dave"]
    _attach_and_wait(site, number)
    client = sign_in_agent(site)
    page = f"/tickets/{number}"
    assert 'name="to_supplier"' in client.get(page).text
    sent = form(
        client,
        f"/agent/tickets/{number}/reply",
        page,
        to_supplier="Parts Co",
        body="AGENTTOSUPPLIER: please send a new part.",
    )
    assert sent.status_code == 303, sent.text
    shown = _show(site, number)
    assert shown["status"] == "Waiting" and shown["first_response_at"] is None
    last = shown["messages"][-1]
    assert (last["direction"], last["to"]) == (
        "to_supplier",
        ["orders@parts.test", "help@parts.test"],
    )
    told = sorted((n.recipient, n.kind, n.language) for n in site.notices("supplier_message"))
    assert told == [
        ("help@parts.test", "supplier_message", "fr"),
        ("orders@parts.test", "supplier_message", "fr"),
    ]
    assert site.notices("agent_replied") == []
    # Not the customer's to read; the supplier's contact reads it after signing in.
    customer = sign_in_customer(site, "dave@acme.test")
    assert "AGENTTOSUPPLIER" not in customer.get(page).text
    contact = sign_in_customer(site, "orders@parts.test")
    seen = contact.get(page)
    assert seen.status_code == 200 and "AGENTTOSUPPLIER" in seen.text
    assert "No VPN since 9am" not in seen.text  # the customer's side stays hidden
    assert contact.get(f"/tickets/{site.numbers['eve']}").status_code == 404
    # The CLI and the API write the same way; naming a supplier not attached is refused.
    with site.store.transaction() as session:
        token = api_tokens.add(session, "crm", site.clock())
    headers = {"Authorization": f"Bearer {token}"}
    api = site.client()
    done = api.post(
        f"/api/tickets/{number}/replies",
        headers=headers,
        json={"body": "API to supplier", "to_supplier": "Parts Co"},
    )
    assert done.status_code == 201, done.text
    wrong = api.post(
        f"/api/tickets/{number}/replies",
        headers=headers,
        json={"body": "x", "to_supplier": "Cables Ltd"},
    )
    assert wrong.status_code == 409 and "is not attached to ticket" in wrong.text
    with site.store.transaction() as session:
        message = messages.reply(
            session,
            settings=site.settings,
            number=number,
            actor=Actor("cli"),
            body="To the customer",
            at=site.clock(),
        )
        assert message.direction == "outbound"
    assert [m["direction"] for m in _show(site, number)["messages"][-3:]] == [
        "to_supplier",
        "to_supplier",
        "outbound",
    ]


def test_reply_to_supplier_from_the_cli(db_url: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path, db_url)
    mail = tmp_path / "m.eml"
    mail.write_bytes(build(sender="carol@customer.test", subject="Help", body="Hi\n"))
    text = tmp_path / "t.txt"
    text.write_text("Please check.\n")
    assert cli("ingest", str(mail)).exit_code == 0
    refused = cli("tickets", "reply", "1", "--file", str(text), "--to-supplier", "Parts Co")
    assert refused.exit_code == 1 and "'Parts Co' is not attached to ticket #1" in refused.output
    assert cli("tickets", "suppliers", "1", "+Parts Co").exit_code == 0
    sent = cli("tickets", "reply", "1", "--file", str(text), "--to-supplier", "Parts Co")
    assert sent.exit_code == 0, sent.output
    assert "to supplier Parts Co stored" in sent.output
    shown = json.loads(cli("tickets", "show", "1", "--json").output)
    assert shown["messages"][-1]["direction"] == "to_supplier"
    assert ("cli", "message_to_supplier") in [(e["actor"], e["action"]) for e in shown["history"]]


def test_a_merge_takes_the_suppliers_helpers_and_departments_along(site: Site) -> None:
    """Carol's ticket (Parts Co attached, Bob helping, billing involved) merged into
    Dave's (same account): the supplier's later mail to the merged ticket is still the
    supplier side on the target, never a customer's reply."""
    from mailgate.tickets import involvement, merge

    carol, dave = site.numbers["carol"], site.numbers["dave"]
    with site.store.transaction() as session:
        actor, at = Actor("cli"), site.clock()
        common = {"settings": site.settings, "actor": actor, "at": at}
        supplier_side.set_suppliers(session, number=carol, add=["Parts Co"], **common)
        involvement.set_helpers(session, number=carol, add=["bob@example.com"], **common)
        involvement.set_departments(session, number=carol, add=["billing"], **common)
        merge.merge(session, number=carol, into=dave, **common)
    shown = _show(site, dave)
    assert (shown["suppliers"], shown["helpers"], shown["departments"]) == (
        ["Parts Co"],
        ["bob@example.com"],
        ["billing"],
    )
    site.ingest(
        build(
            sender="orders@parts.test",
            subject=f"Re: [#{carol}] Printer on fire",
            body="MERGEDSUPPLIER: a new drum is on its way.\n",
        )
    )
    last = _show(site, dave)["messages"][-1]
    assert (last["direction"], last["from"]) == ("supplier", "orders@parts.test")
    page = sign_in_customer(site, "dave@acme.test").get(f"/tickets/{dave}")
    assert "MERGEDSUPPLIER" not in page.text
