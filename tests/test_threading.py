"""Thread resolution through real processing: a table of real-world reply shapes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from mailgate.core.settings import SecuritySettings, Settings
from mailgate.db import queries
from mailgate.db.models import Notice, TicketLink
from mailgate.db.store import Store
from mailgate.inbound.intake import Envelope
from mailgate.threading.tokens import mint_message_id, reply_token
from tests.builders import build, deliver, ready_store
from tests.conftest import SECRET, make_settings

OLD_SECRET = "the-secret-before-rotation-0123456789"
FIRST_ID = "<first.printer@customer.test>"
MX = "mx.example.com"


@pytest.fixture
def rotated(db_url: str) -> Settings:
    """Settings after a key rotation: a new secret, the old one still accepted."""
    return make_settings(
        db_url,
        security=SecuritySettings(
            secret=SECRET, old_secrets=(OLD_SECRET,), trusted_authserv_ids=(MX,)
        ),
    )


@pytest.fixture
def thread(rotated: Settings, now: Callable[[], datetime]) -> Iterator[dict[str, Any]]:
    """Ticket #1 opened by Alice with Bob in Cc, acknowledged before the rotation."""
    before = dataclasses.replace(rotated, security=SecuritySettings(secret=OLD_SECRET))
    store = ready_store(before)
    first = build(message_id=FIRST_ID, cc="Bob <bob@customer.test>")
    result = deliver(store, before, first, now)
    assert result.outcome == "new_ticket" and result.ticket_number == 1
    with store.transaction() as session:
        ack = session.scalars(select(Notice).where(Notice.kind == "acknowledgement")).one()
    yield {"store": store, "ack": f"<{ack.message_id}>", "domain": "example.com"}
    store.engine.dispose()


def _gmail(t: dict[str, Any]) -> bytes:
    return build(
        subject="Re: [#1] Ticket received",
        in_reply_to=t["ack"],
        references=f"{FIRST_ID} {t['ack']}",
        body="Still broken.\n\nOn Mon, Jan 5, 2026 at 10:00 Support <support@example.com> wrote:\n> quoted",
    )


def _outlook(t: dict[str, Any]) -> bytes:
    # Outlook threads with Thread-Index and often sends In-Reply-To without References.
    return build(
        subject="AW: [#1] Ticket received",
        in_reply_to=t["ack"],
        headers=[("Thread-Index", "AdpBc2Rm1234567890abcdef=="), ("Thread-Topic", "Ticket")],
        body="Danke.\n\nVon: Support <support@example.com>\nGesendet: Montag\nAn: Alice\nBetreff: x\n\nalt",
    )


def _apple(t: dict[str, Any]) -> bytes:
    # Apple Mail answering the customer's own sent message: only her Message-ID is known.
    return build(subject="Re: Printer is broken", in_reply_to=FIRST_ID, references=FIRST_ID)


def _tag_only(t: dict[str, Any]) -> bytes:
    return build(subject="Re: [#1] Ticket received", body="No headers kept, tag kept.")


def _forwarded(t: dict[str, Any]) -> bytes:
    return build(
        sender="Carol <carol@elsewhere.test>",
        subject="Fwd: [#1] Ticket received",
        body="---------- Forwarded message ---------\nFrom: Alice",
    )


def _cc_replies(t: dict[str, Any]) -> bytes:
    return build(
        sender="Bob <bob@customer.test>", subject="Re: Printer is broken", in_reply_to=FIRST_ID
    )


def _stranger_in_cc(t: dict[str, Any]) -> bytes:
    return build(sender="Dave <dave@elsewhere.test>", subject="Re: [#1] Printer is broken")


def _forged_plus_token(t: dict[str, Any]) -> bytes:
    return build(
        sender="Mallory <mallory@evil.test>",
        to="support+1-aaaaaaaaaaaaaaaa@example.com",
        subject="hello",
    )


def _forged_message_id_token(t: dict[str, Any]) -> bytes:
    forged = mint_message_id(1, "not-our-secret-at-all-000000", "example.com")
    return build(sender="Mallory <mallory@evil.test>", in_reply_to=f"<{forged}>", subject="x")


def _rotated_plus_token(t: dict[str, Any]) -> bytes:
    return build(
        sender="Erin <erin@customer.test>",
        to=f"support+{reply_token(1, OLD_SECRET)}@example.com",
        subject="question",
    )


def _rotated_message_id_token(t: dict[str, Any]) -> bytes:
    # Signed with the old key and not in the index (e.g. from a restored backup).
    minted = mint_message_id(1, OLD_SECRET, "example.com", nonce="feedface")
    return build(in_reply_to=f"<{minted}>", subject="Re: something")


def _dmarc_fail_with_references(t: dict[str, Any]) -> bytes:
    return build(
        subject="Re: [#1] Ticket received",
        in_reply_to=t["ack"],
        references=t["ack"],
        headers=[
            ("Authentication-Results", f"{MX}; spf=fail; dmarc=fail header.from=customer.test")
        ],
    )


def _dmarc_fail_untrusted(t: dict[str, Any]) -> bytes:
    # Anyone can write this header: from an authserv-id we do not trust, it is ignored.
    return build(
        in_reply_to=t["ack"],
        headers=[("Authentication-Results", "mx.evil.test; dmarc=fail header.from=customer.test")],
    )


CASES = {
    # name: (message, method, joins ticket #1, links to #1)
    "gmail full references": (_gmail, "references", True, False),
    "outlook thread-index no references": (_outlook, "references", True, False),
    "apple mail own message id": (_apple, "references", True, False),
    "client drops in-reply-to, keeps tag": (_tag_only, "subject_tag", True, False),
    "forwarded by a third party": (_forwarded, "new", False, True),
    "cc'd participant replies": (_cc_replies, "references", True, False),
    "stranger with only the tag": (_stranger_in_cc, "new", False, True),
    "forged plus-address token": (_forged_plus_token, "new", False, False),
    "forged message-id token": (_forged_message_id_token, "new", False, False),
    "plus token signed with rotated key": (_rotated_plus_token, "token", True, False),
    "message-id token signed with rotated key": (_rotated_message_id_token, "token", True, False),
    "dmarc fail never joins": (_dmarc_fail_with_references, "new", False, True),
    "dmarc fail from untrusted authserv-id": (_dmarc_fail_untrusted, "references", True, False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_reply_cases(
    case: str, thread: dict[str, Any], rotated: Settings, now: Callable[[], datetime]
) -> None:
    """Each reply shape joins ticket #1 or opens a new one, recording the method that matched."""
    builder, method, joins, links = CASES[case]
    store: Store = thread["store"]
    result = deliver(store, rotated, builder(thread), now)
    assert result.state == "processed", result
    with store.transaction() as session:
        ticket = queries.show_ticket(session, result.ticket_number)
        link_rows = session.scalars(select(TicketLink)).all()
    message = ticket["messages"][-1]
    assert message["thread_method"] == method
    if joins:
        assert result.ticket_number == 1 and result.outcome == "reply"
    else:
        assert result.ticket_number == 2 and result.outcome == "new_ticket"
        assert [x["number"] for x in ticket["links"]] == ([1] if links else [])
        assert len(link_rows) == (1 if links else 0)


def test_plus_token_in_envelope_recipient(
    thread: dict[str, Any], rotated: Settings, now: Callable[[], datetime]
) -> None:
    """A token survives in RCPT TO when the client rewrote the To header."""
    raw = build(sender="erin@customer.test", subject="no tag here")
    envelope = Envelope(rcpt_to=(f"support+{reply_token(1, SECRET)}@example.com",))
    result = deliver(thread["store"], rotated, raw, now, envelope=envelope)
    assert (result.outcome, result.ticket_number) == ("reply", 1)


def test_dmarc_verdict_is_kept_on_the_message(
    thread: dict[str, Any], rotated: Settings, now: Callable[[], datetime]
) -> None:
    """The DMARC result and its reason are stored with the message, and nothing answers it."""
    result = deliver(thread["store"], rotated, _dmarc_fail_with_references(thread), now)
    with thread["store"].transaction() as session:
        ticket = queries.show_ticket(session, result.ticket_number)
        states = {
            n.kind: n.state
            for n in session.scalars(select(Notice).where(Notice.ticket_id == ticket["number"]))
        }
    screening = ticket["messages"][-1]["screening"]
    assert screening["dmarc"] == "fail"
    assert [v["check"] for v in screening["verdicts"]] == ["dmarc_fail"]
    assert states == {"acknowledgement": "suppressed"}
