"""Issue 19, as an outsider attacks it: mail through a real `mailgate smtp` process, the
portal over HTTP, the CLI as a process, on a real SQLite file and on PostgreSQL.

Each test is the regression test of one item: a Message-ID is no secret (1), one sender
the one DMARC judged (2), control characters never reach a notice (3), caps per mailbox
(8), only the recipient's own Message-ID echoed (9), closed is closed (10), lenient
parsing (12).
"""

from __future__ import annotations

import dataclasses
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from mailgate.core.settings import SecuritySettings, Settings
from mailgate.db import queries
from mailgate.db.models import InboundMessage, Notice, Participant, Ticket
from mailgate.tickets import messages
from mailgate.tickets.actors import Actor
from tests.faults.support import Receiver, free_port, run_mailgate
from tests.smtp_support import wait_until
from tests.web_support import Site, make_site, sign_in_customer

pytestmark = pytest.mark.faults
SUPPORT = "support@example.com"
ANN = Actor("ann@example.com", "ann@example.com", "Ann")
TRUSTED = "mx.example.com"


@dataclass
class Gateway:
    """A real `mailgate smtp` and the portal, on one SQLite file."""

    site: Site
    receiver: Receiver
    config: Path

    def send(self, raw: bytes, sender: str = "someone@outside.test") -> None:
        """Send ``raw`` and wait until the receiver has processed it (it does so right
        after the 250, with the embedded queue)."""
        with smtplib.SMTP("127.0.0.1", self.receiver.port, timeout=30) as client:
            client.sendmail(sender, [SUPPORT], raw)
        wait_until(self._all_processed, timeout=30, what="the receiver to process the mail")

    def _all_processed(self) -> bool:
        with self.site.store.transaction() as session:
            states = set(session.scalars(select(InboundMessage.state)))
        return bool(states) and "received" not in states

    def ticket(self, number: int) -> dict:  # type: ignore[type-arg]
        with self.site.store.transaction() as session:
            return queries.show_ticket(session, number)

    def participants(self, number: int) -> set[str]:
        with self.site.store.transaction() as session:
            ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
            return set(
                session.scalars(select(Participant.email).where(Participant.ticket_id == ticket.id))
            )

    def notices(self, kind: str) -> list[Notice]:
        with self.site.store.transaction() as session:
            return list(
                session.scalars(select(Notice).where(Notice.kind == kind).order_by(Notice.id))
            )


def _trusting(settings: Settings) -> Settings:
    security = SecuritySettings(secret=settings.security.secret, trusted_authserv_ids=(TRUSTED,))
    return dataclasses.replace(settings, security=security)


@pytest.fixture
def gateway(tmp_path: Path, db_url: str) -> Iterator[Gateway]:
    """On a SQLite file and on PostgreSQL (``db_url``)."""
    url = db_url
    site = make_site(url, seed=False, adjust=_trusting)
    port = free_port()
    config = tmp_path / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n'
        f'[security]\nsecret = "{site.settings.security.secret}"\n'
        f'trusted_authserv_ids = ["{TRUSTED}"]\n'
        f'[web]\nbase_url = "{site.settings.web.base_url}"\n'
        f'[smtp]\nlisten = "127.0.0.1:{port}"\n'
        '[[customers]]\nname = "Acme"\ndomains = ["acme.test"]\nadmins = ["boss@acme.test"]\n'
        '[[customers]]\nname = "Globex"\ndomains = ["globex.test"]\n'
        'admins = ["chief@globex.test"]\n'
        '[[agents]]\nemail = "ann@example.com"\nname = "Ann"\nteams = ["support"]\n'
        '[[teams]]\nname = "support"\nassignment = "none"\n'
    )
    receiver = Receiver(config, port)
    receiver.start()
    try:
        yield Gateway(site, receiver, config)
    finally:
        receiver.stop()
        site.store.engine.dispose()


def mail(
    sender: str,
    subject: str,
    message_id: str,
    *,
    in_reply_to: str = "",
    cc: str = "",
    headers: str = "",
    body: str = "Hello.",
) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {SUPPORT}",
        *([f"Cc: {cc}"] if cc else []),
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        *([f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"] if in_reply_to else []),
        "Date: Mon, 05 Jan 2026 09:30:00 +0000",
        *([headers] if headers else []),
    ]
    return ("\r\n".join(lines) + f"\r\n\r\n{body}\r\n").encode()


def test_a_message_id_gives_a_stranger_no_place_and_no_look(gateway: Gateway) -> None:
    """Item 1: a stranger quoting the ticket's Message-ID opens a linked ticket of her own,
    joins nothing and sees nothing; a colleague copied on the thread still joins it."""
    gateway.send(
        mail("Carol <carol@acme.test>", "VPN down", "<carol-1@acme.test>", cc="dan@acme.test")
    )
    gateway.send(
        mail("Eve <eve@globex.test>", "Re: VPN down", "<eve-1@globex.test>",
             in_reply_to="<carol-1@acme.test>")
    )  # fmt: skip
    gateway.send(
        mail("Dan <dan@acme.test>", "Re: VPN down", "<dan-1@acme.test>",
             in_reply_to="<carol-1@acme.test>")
    )  # fmt: skip
    carol = gateway.ticket(1)
    assert "eve@globex.test" not in gateway.participants(1)
    assert [m["from"] for m in carol["messages"]] == ["carol@acme.test", "dan@acme.test"]
    eve = gateway.ticket(2)
    assert eve["requester"] == "eve@globex.test"
    assert eve["links"] == [{"number": 1, "kind": "referenced"}]
    client = sign_in_customer(gateway.site, "eve@globex.test")
    assert client.get("/tickets/1").status_code == 404
    assert client.get("/tickets/1/attachments/1").status_code == 404
    assert client.get("/tickets/2").status_code == 200
    assert "VPN down" not in client.get("/tickets").text.replace("Re: VPN down", "")


@pytest.mark.parametrize(
    "from_lines",
    [
        '"carol@acme.test" <eve@evil.test>',
        "carol@acme.test\r\nFrom: eve@evil.test",
        "Carol <carol@acme.test>\r <eve@evil.test>",
        "friends: carol@acme.test;, eve@evil.test",
    ],
    ids=["address-as-name", "two-from-fields", "bare-cr", "group"],
)
def test_dmarc_pass_vouches_only_for_the_sender_it_judged(
    gateway: Gateway, from_lines: str
) -> None:
    """Item 2: a dmarc=pass for the attacker's domain behind an ambiguous From never
    joins the victim's ticket (by subject tag or reference) and answers nobody."""
    gateway.send(mail("Carol <carol@acme.test>", "Invoice", "<carol-2@acme.test>"))
    results = f"Authentication-Results: {TRUSTED}; dmarc=pass header.from=evil.test"
    gateway.send(
        mail(from_lines, "Re: [#1] Invoice", "<evil-1@evil.test>",
             in_reply_to="<carol-2@acme.test>", headers=results)
    )  # fmt: skip
    assert [m["from"] for m in gateway.ticket(1)["messages"]] == ["carol@acme.test"]
    forged = gateway.ticket(2)
    assert forged["links"] == [{"number": 1, "kind": "referenced"}]
    assert forged["messages"][0]["screening"]["category"] == "forged"
    acks = gateway.notices("acknowledgement")
    assert [n.ticket_id for n in acks if n.state != "suppressed"] == [1]


def test_dmarc_pass_for_another_domain_is_no_pass(gateway: Gateway) -> None:
    """Item 2: header.from names another domain than the one From address read here."""
    gateway.send(mail("Carol <carol@acme.test>", "Printer", "<carol-3@acme.test>"))
    results = f"Authentication-Results: {TRUSTED}; dmarc=pass header.from=evil.test"
    gateway.send(
        mail("Carol <carol@acme.test>", "Re: Printer", "<evil-2@evil.test>",
             in_reply_to="<carol-3@acme.test>", headers=results)
    )  # fmt: skip
    assert len(gateway.ticket(1)["messages"]) == 1
    screening = gateway.ticket(2)["messages"][0]["screening"]
    assert (screening["category"], screening["dmarc"]) == ("forged", "other_domain")


def test_control_characters_never_reach_a_notice(gateway: Gateway) -> None:
    """Item 3: an address with a control character gets no automatic mail (suppressed
    with the reason); a notice that cannot be composed fails at once, and the rest of
    the batch is sent; `notices send` says some failed."""
    gateway.send(mail("Mallory <mal\x01lory@acme.test>", "Hi", "<mal-1@acme.test>"))
    [ack] = gateway.notices("acknowledgement")
    assert ack.state == "suppressed" and "control character" in ack.last_error
    with gateway.site.store.transaction() as session:
        # A row written before this rule existed: pending, to an address no mail can carry.
        ticket = session.scalars(select(Ticket)).one()
        for i, recipient in enumerate(["bad\u2028x@acme.test", "fine@acme.test"]):
            session.add(
                Notice(ticket_id=ticket.id, kind="status_changed", recipient=recipient,
                       language="en", state="pending", cause=f"legacy:{i}",
                       message_id=f"legacy-{i}@example.com", created_at=gateway.site.clock(),
                       next_attempt_at=gateway.site.clock(), detail={"status": "Open"})
            )  # fmt: skip
    done = run_mailgate(gateway.config, "notices", "send")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 sent" in done.stdout and "1 failed" in done.stdout
    assert "Traceback" not in done.stderr
    states = {n.recipient: (n.state, n.last_error) for n in gateway.notices("status_changed")}
    assert states["fine@acme.test"][0] == "sent"
    assert states["bad\u2028x@acme.test"][0] == "failed"
    assert states["bad\u2028x@acme.test"][1].startswith("cannot be composed")


def test_hourly_caps_count_a_mailbox_not_a_spelling(gateway: Gateway) -> None:
    """Item 8: victim+1@, Victim+2@, … share victim@'s hourly allowance."""
    limit = gateway.site.settings.outbound.max_per_hour_per_address
    for i in range(limit + 3):
        local = "Victim" if i % 2 else "victim"
        gateway.send(mail(f"<{local}+{i}@acme.test>", f"Spam {i}", f"<s{i}@acme.test>"))
    states = [n.state for n in gateway.notices("acknowledgement")]
    assert states == ["sent"] * limit + ["suppressed"] * 3


def test_notices_echo_only_the_recipients_own_message_id(gateway: Gateway) -> None:
    """Item 9: the agent's reply notice to the requester threads to her own message, not
    to the newest one on the ticket; the assignee's notice echoes no customer's id."""
    gateway.send(
        mail("Carol <carol@acme.test>", "Laptop", "<carol-4@acme.test>", cc="dan@acme.test")
    )
    gateway.send(
        mail("Dan <dan@acme.test>", "Re: Laptop", "<dan-chosen-text@acme.test>",
             in_reply_to="<carol-4@acme.test>")
    )  # fmt: skip
    site = gateway.site
    with site.store.transaction() as session:
        from mailgate.tickets import changes

        changes.assign(session, settings=site.settings, number=1, actor=Actor("cli"),
                       assignee="ann@example.com", at=site.clock())  # fmt: skip
        messages.reply(session, settings=site.settings, number=1, actor=ANN,
                       body="On it.", at=site.clock())  # fmt: skip
    gateway.send(
        mail("Dan <dan@acme.test>", "Re: Laptop", "<dan-2@acme.test>",
             in_reply_to="<carol-4@acme.test>")
    )  # fmt: skip
    [replied] = gateway.notices("agent_replied")
    assert replied.in_reply_to == "carol-4@acme.test"
    assert all(n.in_reply_to == "" for n in gateway.notices("customer_replied"))
    assert all(n.in_reply_to == "" for n in gateway.notices("assigned"))


def test_closed_is_closed_for_every_closed_status(gateway: Gateway) -> None:
    """Item 10: Resolved → Closed from the CLI and Closed → Resolved from the API are
    refused, and no status notice goes out."""
    gateway.send(mail("Carol <carol@acme.test>", "Mouse", "<carol-5@acme.test>"))
    assert run_mailgate(gateway.config, "tickets", "status", "1", "Resolved").returncode == 0
    refused = run_mailgate(gateway.config, "tickets", "status", "1", "Closed")
    assert refused.returncode == 1 and "open a new ticket" in refused.stderr
    gateway.send(mail("Carol <carol@acme.test>", "Keyboard", "<carol-6@acme.test>"))
    assert run_mailgate(gateway.config, "tickets", "close", "2").returncode == 0
    from mailgate.web import api_tokens

    with gateway.site.store.transaction() as session:
        token = api_tokens.add(session, "crm", gateway.site.clock())
    back = gateway.site.client().post(
        "/api/tickets/2/status",
        headers={"Authorization": f"Bearer {token}"},
        json={"status": "Resolved"},
    )
    assert back.status_code == 409
    statuses = [(n.ticket_id, n.detail["status"]) for n in gateway.notices("status_changed")]
    assert statuses == [(1, "Resolved"), (2, "Closed")]
    assert (gateway.ticket(1)["status"], gateway.ticket(2)["status"]) == ("Resolved", "Closed")


def test_blank_and_junk_lines_before_the_headers_are_skipped(gateway: Gateway) -> None:
    """Item 12: what precedes the header block is skipped (recorded as a defect), by SMTP
    and by `mailgate ingest`; only bytes without any header block are not an email."""
    raw = mail("Carol <carol@acme.test>", "Leading blanks", "<carol-7@acme.test>")
    gateway.send(b"   \r\n\t\r\n" + raw)
    banner = b"Forwarded by the old system\n\n" + raw.replace(b"carol-7", b"carol-8")
    piped = gateway.config.parent / "banner.eml"
    piped.write_bytes(banner)
    ingested = run_mailgate(gateway.config, "ingest", str(piped))
    assert ingested.returncode == 0, ingested.stderr
    # By SMTP the receiver's Received: field comes first, and blank lines after a field
    # read as its (empty) continuation; by ingest the blank lines are skipped.
    [by_smtp] = gateway.ticket(1)["messages"]
    [by_ingest] = gateway.ticket(2)["messages"]
    assert by_smtp["from"] == by_ingest["from"] == "carol@acme.test"
    assert (by_smtp["subject"], by_ingest["subject"]) == ("Leading blanks", "Leading blanks")
    assert any("before the header block" in d for d in by_ingest["defects"])
    nothing = gateway.config.parent / "text.txt"
    nothing.write_bytes(b"just some words\nand more words\n")
    assert run_mailgate(gateway.config, "ingest", str(nothing)).returncode == 65
