"""Full-text search (issue 20, item 6): `tickets search`, `GET /api/tickets?q=`, the agent
queue's search box and the customer's, over an index the database keeps current in the
transaction of every write. A customer finds only the tickets they may see, and never by
the words of an internal note. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import delete, select, text, update

from mailgate.db import search
from mailgate.db.models import StoredAttachment, Ticket, TicketMessage
from mailgate.tickets import changes, messages
from mailgate.tickets.actors import Actor
from mailgate.web import access, api_tokens
from tests.conftest import SECRET
from tests.databases import migrate
from tests.mail import build
from tests.search_support import customer_finds, found, search_site
from tests.web_support import Site, make_site, sign_in_agent, sign_in_customer

site_fixture = pytest.fixture(name="site")(search_site)

ANN = Actor("ann@example.com", "ann@example.com", "Ann")


def listed(page: str) -> list[int]:
    """Ticket numbers linked from a list page, in order, once each."""
    numbers = [int(n) for n in re.findall(r'<td><a href="/tickets/(\d+)">#', page)]
    return list(dict.fromkeys(numbers))


def test_every_place_a_word_can_be(site: Site) -> None:
    """Subject, requester, participant, attachment name, message body and note are all
    searched; every term must be found, possibly in different places; case and
    punctuation do not matter; a "quoted phrase" must stand together."""
    carol, dave, eve = (site.numbers[k] for k in ("carol", "dave", "eve"))
    assert found(site, "printer") == [carol]  # subject
    assert found(site, "dave@acme.test") == [dave]  # requester
    assert found(site, "DAVE") == [dave]
    assert found(site, "report.pdf") == []  # "report ü.pdf": not next to each other
    assert found(site, "report") == found(site, '"ü pdf"') == [carol]  # attachment
    assert found(site, "room 4") == [carol]  # message body
    assert found(site, "grumpy") == [carol]  # the note, for staff
    assert found(site, "acme") == [dave, carol]  # both requesters' domain, newest first
    assert found(site, "printer vpn") == []  # every term, not any
    assert found(site, "invoice 7") == [eve]  # subject and body together
    assert found(site, '"on fire"') == [carol]
    assert found(site, '"fire on"') == []
    assert found(site, "zebra") == []


def test_where_a_word_is_found_ranks_the_tickets(site: Site) -> None:
    """A ticket with the word in its subject comes before one with it only in a message;
    equal places list the newest first; offset and limit page through them."""
    carol = site.numbers["carol"]
    later = site.ingest(build(sender="Fred <fred@acme.test>", subject="Toner", body="printer"))
    assert found(site, "printer") == [carol, later]
    assert found(site, "printer", limit=1) == [carol]
    assert found(site, "printer", offset=1) == [later]


@pytest.mark.parametrize(
    "query",
    [
        'printer" OR "vpn',
        "printer OR vpn",
        "NEAR(printer vpn)",
        "body:printer",
        "printer*",
        "-vpn printer",
        "(printer",
        "printer & !vpn",
        "printer <-> fire",
        "'printer'",
        '"printer',
    ],
)
def test_search_syntax_is_only_words(site: Site, query: str) -> None:
    """FTS5 and tsquery operators in what someone typed are words to look for, never
    syntax: no error, and no operator takes effect (OR would find the VPN ticket)."""
    assert site.numbers["dave"] not in found(site, query)


def test_a_search_is_planned_for_its_own_words(pg_url: str) -> None:
    """PostgreSQL plans each search for its words and tickets: psycopg prepares a
    statement run five times, and a plan made for any words (a generic plan) took a
    customer's search at a million tickets from 30 to 140 ms."""
    site = make_site(pg_url)
    # Of statements with parameters: one without is planned for its own values anyway.
    plans = text(
        "SELECT count(*), coalesce(sum(generic_plans), 0) FROM pg_prepared_statements"
        " WHERE cardinality(parameter_types) > 0"
    )
    with site.store.transaction() as session:
        visible = access.customer_scope(session, "boss@acme.test")
        before = session.execute(plans).one()  # the site's making ran on this connection
        for _ in range(12):
            search.search(session, "acme printer")
            search.search(session, "acme", within=visible, internal=False)
        after = session.execute(plans).one()
    site.store.engine.dispose()
    assert after[0] > before[0]  # the searches' statements were prepared...
    assert after[1] == before[1]  # ...and never planned for any words


def test_no_words_is_refused(site: Site) -> None:
    """A query without a letter or digit is refused by the search, not run."""
    from mailgate.core.errors import InvalidValue

    for query in ("", "   ", "!!", '""', "- * :"):
        with pytest.raises(InvalidValue):
            found(site, query)


def test_customers_find_only_what_they_may_see(site: Site) -> None:
    """A customer's search looks only in their own tickets (an account admin: every
    ticket of the account), never in internal notes or a note's attachments."""
    carol, dave = site.numbers["carol"], site.numbers["dave"]
    with site.store.transaction() as session:
        note = session.scalars(select(TicketMessage).where(TicketMessage.direction == "note")).one()
        session.add(
            StoredAttachment(
                ticket_message_id=note.id,
                filename="escalation-plan.txt",
                content_type="text/plain",
                size=1,
                sha256="0" * 64,
                content=b"x",
            )
        )
    assert customer_finds(site, "carol@acme.test", "printer") == [carol]
    assert customer_finds(site, "carol@acme.test", "grumpy") == []
    assert customer_finds(site, "carol@acme.test", "escalation") == []
    assert found(site, "escalation") == [carol]  # staff do find it
    assert customer_finds(site, "dave@acme.test", "printer") == []  # the same account
    assert customer_finds(site, "dave@acme.test", "acme") == [dave]
    assert customer_finds(site, "boss@acme.test", "acme") == [dave, carol]
    assert customer_finds(site, "boss@acme.test", "invoice") == []  # Globex's
    assert customer_finds(site, "boss@acme.test", "grumpy") == []
    assert customer_finds(site, "eve@globex.test", "printer") == []
    assert customer_finds(site, "nobody@else.test", "printer") == []


def test_the_customer_portal_search_box(site: Site) -> None:
    """The customer's list has a search box; its results are their own tickets, of any
    status, found by the agents' replies too but not by notes."""
    carol = site.numbers["carol"]
    with site.store.transaction() as session:
        messages.reply(
            session,
            settings=site.settings,
            number=carol,
            actor=ANN,
            body="Please use the extinguisher.",
            at=site.clock(),
        )
    client = sign_in_customer(site, "carol@acme.test")
    page = client.get("/tickets")
    assert 'name="q"' in page.text and 'type="search"' in page.text
    assert listed(client.get("/tickets", params={"q": "extinguisher"}).text) == [carol]
    assert listed(client.get("/tickets", params={"q": "Printer fire"}).text) == [carol]
    for hidden in ("grumpy", "vpn", "invoice"):
        result = client.get("/tickets", params={"q": hidden})
        assert result.status_code == 200 and listed(result.text) == []
        assert "None of your tickets match." in result.text
    boss = sign_in_customer(site, "boss@acme.test")
    assert listed(boss.get("/tickets", params={"q": "acme"}).text) == [
        site.numbers["dave"],
        carol,
    ]
    assert client.get("/tickets", params={"q": "x" * 501}).status_code == 400


def test_the_agent_queue_search_box(site: Site) -> None:
    """The queue has a search box; a search lists the matches of every status, notes
    included, best first, and a query of punctuation alone shows the queue."""
    carol, dave = site.numbers["carol"], site.numbers["dave"]
    with site.store.transaction() as session:
        changes.close(session, settings=site.settings, number=dave, actor=ANN, at=site.clock())
    client = sign_in_agent(site)
    queue = client.get("/agent")
    assert 'name="q"' in queue.text and dave not in listed(queue.text)
    grumpy = client.get("/agent", params={"q": "grumpy"})
    assert grumpy.status_code == 200 and listed(grumpy.text) == [carol]
    assert 'value="grumpy"' in grumpy.text and "Back to the queue" in grumpy.text
    assert listed(client.get("/agent", params={"q": "vpn"}).text) == [dave]  # closed
    assert listed(client.get("/agent", params={"q": "acme"}).text) == [dave, carol]
    none = client.get("/agent", params={"q": "zebra"})
    assert listed(none.text) == [] and "No tickets match." in none.text
    assert listed(client.get("/agent", params={"q": "!!"}).text) == listed(queue.text)


def test_the_api_searches_with_q(site: Site) -> None:
    """GET /api/tickets?q= lists the matches, best first, with the other filters; a q
    without a letter or a digit is refused by the schema (422), as it says."""
    with site.store.transaction() as session:
        token = api_tokens.add(session, "crm", site.clock())
    client, headers = site.client(), {"Authorization": f"Bearer {token}"}

    def numbers(**params: str) -> list[int]:
        answer = client.get("/api/tickets", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return [t["number"] for t in answer.json()]

    carol, dave = site.numbers["carol"], site.numbers["dave"]
    assert numbers(q="acme") == [dave, carol]
    assert numbers(q="acme", limit="1") == [dave]
    assert numbers(q="grumpy") == [carol]  # integrations see notes, as GET /tickets/N does
    assert numbers(q="acme", status="Closed") == []
    assert numbers(q="acme", status="New", type="General") == [dave, carol]
    bad = client.get("/api/tickets", params={"q": "!!"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "q"]
    twice = client.get("/api/tickets?q=a&q=b", headers=headers)
    assert twice.status_code == 400
    assert client.get("/api/tickets", params={"q": "acme"}).status_code == 401


def test_the_index_follows_every_write(site: Site) -> None:
    """Replies, notes, new participants and attachments are found as soon as they are
    committed; a changed or deleted row, or a message moved to another ticket, is found
    as it is now, never as it was."""
    first = site.ingest(
        build(
            sender="Gina Lollo <gina@acme.test>",
            subject="Badge reader",
            body="The badge reader beeps.",
            message_id="<gina-1@acme.test>",
        )
    )
    assert found(site, "lollo") == [first]
    assert found(site, "kangaroo") == found(site, "walrus") == found(site, "boss") == []
    with site.store.transaction() as session:
        messages.reply(
            session,
            settings=site.settings,
            number=first,
            actor=ANN,
            body="A kangaroo has been sent.",
            at=site.clock(),
        )
        messages.note(
            session,
            settings=site.settings,
            number=first,
            actor=ANN,
            body="The walrus knows.",
            at=site.clock(),
        )
    assert found(site, "kangaroo") == found(site, "walrus") == [first]
    assert customer_finds(site, "gina@acme.test", "kangaroo") == [first]
    assert customer_finds(site, "gina@acme.test", "walrus") == []
    site.ingest(
        build(
            sender="The Boss <boss@acme.test>",  # the account's admin: joins the ticket
            subject="Re: Badge reader",
            body="Still beeping, figures attached.",
            in_reply_to="<gina-1@acme.test>",
            attachments=[("quarterly-figures.xlsx", "application/octet-stream", b"x")],
        )
    )
    assert found(site, "boss@acme.test") == [first]  # the new participant
    assert found(site, "quarterly figures") == [first]
    with site.store.transaction() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == first)).one()
        session.execute(
            update(TicketMessage)
            .where(TicketMessage.ticket_id == ticket.id, TicketMessage.direction == "outbound")
            .values(body_text="A wombat has been sent.")
        )
        session.execute(
            delete(StoredAttachment).where(StoredAttachment.filename == "quarterly-figures.xlsx")
        )
        ticket.requester_name = "Gina Rossi"  # only the ticket itself has the name
    assert found(site, "kangaroo") == found(site, "quarterly") == found(site, "lollo") == []
    assert found(site, "wombat") == found(site, "rossi") == [first]
    carol = site.numbers["carol"]
    with site.store.transaction() as session:
        ids = dict(session.execute(select(Ticket.number, Ticket.id)).all())
        session.execute(
            update(TicketMessage)
            .where(TicketMessage.ticket_id == ids[first], TicketMessage.direction == "note")
            .values(ticket_id=ids[carol])
        )
    assert found(site, "walrus") == [carol]


def test_tickets_search_command(db_url: str, cli: Callable[..., Result], tmp_path: Path) -> None:
    """`mailgate tickets search QUERY` prints the matches as `tickets list` does, or as
    JSON with --json; --limit bounds them; a query without words is one clear line."""
    migrate(db_url)  # PostgreSQL is never migrated implicitly
    (tmp_path / "mailgate.toml").write_text(
        f'[database]\nurl = "{db_url}"\n[security]\nsecret = "{SECRET}"\n'
        f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n'
    )
    for i, (sender, subject) in enumerate(
        (("ann@customer.test", "Printer on fire"), ("bob@customer.test", "Printer jammed"))
    ):
        mail = tmp_path / f"m{i}.eml"
        mail.write_bytes(build(sender=sender, subject=subject, body=f"Words {i}.\n"))
        assert cli("ingest", str(mail)).exit_code == 0
    table = cli("tickets", "search", "printer")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:2] == ["NUMBER", "STATUS"] and len(lines) == 3
    as_json = cli("tickets", "search", "printer", "--json")
    assert [t["number"] for t in json.loads(as_json.output)] == [2, 1]
    words = cli("tickets", "search", "printer", "fire", "--json")
    assert [t["subject"] for t in json.loads(words.output)] == ["Printer on fire"]
    limited = cli("tickets", "search", "printer", "--limit", "1", "--json")
    assert [t["number"] for t in json.loads(limited.output)] == [2]
    assert cli("tickets", "search", "zebra").output.strip() == "no tickets match"
    empty = cli("tickets", "search", "--", "!!")
    assert empty.exit_code == 1
    assert empty.output.strip() == (
        "mailgate: nothing to search for: give a word, an address or a file name"
    )
