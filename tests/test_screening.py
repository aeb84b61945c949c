"""Screening checks as tables: synthetic signals, and every message of the Zammad corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.core.authentication import dmarc_results
from mailgate.core.message import parse
from mailgate.core.screening import ScreenContext, screen
from mailgate.core.settings import LimitsSettings
from tests.builders import build
from tests.conftest import CORPUS

OWN = ScreenContext(loop_marker="support@example.com")


def _screen(raw: bytes, ctx: ScreenContext = OWN):  # type: ignore[no-untyped-def]
    return screen(parse(raw, LimitsSettings()), ctx, raw=raw)


SIGNALS = [
    # (headers, sender, subject, expected category, expected check)
    ([("Auto-Submitted", "auto-replied")], None, "hi", "auto_reply", "auto_submitted"),
    ([("Auto-Submitted", "auto-generated; foo")], None, "hi", "auto_reply", "auto_submitted"),
    ([("Auto-Submitted", "no")], None, "hi", "ordinary", None),
    ([("X-Autoreply", "yes")], None, "hi", "auto_reply", "x_autoreply"),
    ([("X-Autorespond", "Vacation")], None, "hi", "auto_reply", "x_autoreply"),
    ([("X-Auto-Response-Suppress", "All")], None, "hi", "auto_reply", "auto_response_suppress"),
    ([("X-Auto-Response-Suppress", "DR, OOF")], None, "hi", "auto_reply", "auto_response_suppress"),
    ([("X-Auto-Response-Suppress", "RN, NRN")], None, "hi", "ordinary", None),
    ([("Precedence", "bulk")], None, "hi", "bulk", "precedence"),
    ([("Precedence", "list")], None, "hi", "bulk", "precedence"),
    ([("Precedence", "junk")], None, "hi", "bulk", "precedence"),
    ([("Precedence", "auto_reply")], None, "hi", "auto_reply", "precedence"),
    ([("List-Id", "<users.lists.test>")], None, "hi", "bulk", "list_mail"),
    ([("List-Unsubscribe", "<mailto:u@x.test>")], None, "hi", "bulk", "list_mail"),
    ([("Return-Path", "<owner-users@lists.test>")], None, "hi", "bulk", "list_envelope"),
    ([("Return-Path", "<users-bounces@lists.test>")], None, "hi", "bulk", "list_envelope"),
    ([], "MAILER-DAEMON@mx.test", "Undelivered Mail", "bounce", "daemon_sender"),
    ([], "postmaster@mx.test", "Delivery failure", "bounce", "daemon_sender"),
    ([("Return-Path", "<>")], None, "hi", "null_sender", "null_sender"),
    ([], "noreply@shop.test", "Your order", "noreply", "noreply_sender"),
    ([], "no-reply@shop.test", "Your order", "noreply", "noreply_sender"),
    ([], "do_not_reply@shop.test", "Your order", "noreply", "noreply_sender"),
    ([("Return-Path", "<noreply@bounce.shop.test>")], None, "x", "noreply", "noreply_sender"),
    ([], "reply@shop.test", "Your order", "ordinary", None),
    ([("X-Mailgate-Loop", "support@example.com")], None, "hi", "loop", "own_loop_marker"),
    ([("X-Mailgate-Loop", "help@other.test")], None, "hi", "auto_reply", "own_loop_marker"),
    # Out-of-office subjects in English, French, Spanish and German.
    ([], None, "Out of Office: Printer is broken", "auto_reply", "out_of_office_subject"),
    ([], None, "Automatic reply: [#1] Ticket", "auto_reply", "out_of_office_subject"),
    ([], None, "AUTO: Alice is out of the office", "auto_reply", "out_of_office_subject"),
    ([], None, "Réponse automatique : [#1] Ticket", "auto_reply", "out_of_office_subject"),
    ([], None, "Absence du bureau", "auto_reply", "out_of_office_subject"),
    ([], None, "Respuesta automática: [#1] Ticket", "auto_reply", "out_of_office_subject"),
    ([], None, "Fuera de la oficina hasta el lunes", "auto_reply", "out_of_office_subject"),
    ([], None, "Abwesenheitsnotiz: [#1] Ticket", "auto_reply", "out_of_office_subject"),
    ([], None, "Automatische Antwort: Drucker", "auto_reply", "out_of_office_subject"),
    ([], None, "Re: Out of office: x", "auto_reply", "out_of_office_subject"),
    # A human mentioning absence mid-subject is not an auto-reply.
    ([], None, "Question about your out of office policy", "ordinary", None),
    ([], None, "Re: Printer is broken", "ordinary", None),
]


@pytest.mark.parametrize(("headers", "sender", "subject", "category", "check"), SIGNALS)
def test_signals(
    headers: list[tuple[str, str]], sender: str | None, subject: str, category: str, check: str
) -> None:
    """Each loop/bounce/bulk signal puts a message in its category, named by its check."""
    raw = build(sender=sender or "alice@customer.test", subject=subject, headers=headers)
    result = _screen(raw)
    assert result.category == category
    if check is None:
        assert result.verdicts == ()
        assert result.answerable
    else:
        assert check in [v.check for v in result.verdicts]
        assert not result.answerable
        assert all(v.reason for v in result.verdicts)


def test_envelope_sender_from_transport_wins() -> None:
    """A null MAIL FROM from the transport counts even without a Return-Path header."""
    result = _screen(build(), ScreenContext(envelope_from="<>"))
    assert result.category == "null_sender"


def test_delivery_report_names_the_bounced_message() -> None:
    """A DSN's returned headers give the original Message-ID (RFC 3464 §2)."""
    raw = (
        b"From: MAILER-DAEMON@mx.test\r\nTo: support@example.com\r\nSubject: failure\r\n"
        b"Message-ID: <dsn1@mx.test>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.test\r\n\r\nFinal-Recipient: rfc822; x@y.test\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\n\r\n"
        b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"From: support@example.com\r\nMessage-ID: <mg.1.abc.defghijklmnopqrs@example.com>\r\n\r\n"
        b"--b--\r\n"
    )
    result = _screen(raw)
    assert result.category == "bounce" and result.automatic
    assert result.reported_ids == ("mg.1.abc.defghijklmnopqrs@example.com",)


DMARC = [
    # (headers, trusted ids, (result, header.from domain) pairs)
    (
        ["mx.example.com; dmarc=fail header.from=x.test"],
        ("mx.example.com",),
        (("fail", "x.test"),),
    ),
    (
        ["mx.example.com; spf=pass smtp.mailfrom=x.test; dmarc=pass"],
        ("MX.example.com",),
        (("pass", ""),),
    ),
    (["mx.evil.test; dmarc=pass"], ("mx.example.com",), ()),
    (["mx.example.com; dmarc=fail"], (), ()),
    (["mx.example.com; dkim=pass header.d=x.test"], ("mx.example.com",), ()),
    (
        ['mx.example.com; spf=neutral smtp.helo="a" junk; ='],
        ("mx.example.com",),
        (("unparsable", ""),),
    ),
]


@pytest.mark.parametrize(("headers", "trusted", "expected"), DMARC)
def test_dmarc_results_only_from_trusted_ids(
    headers: list[str], trusted: tuple[str, ...], expected: tuple[tuple[str, str], ...]
) -> None:
    """Authentication-Results count only from a trusted authserv-id (RFC 8601 §5)."""
    assert dmarc_results(headers, trusted) == expected


# Every message of the corpus with the category it must get, and why. The SOURCE.md
# names the bounces (mail018, 033, 052, 055, 063, 092) and the auto/bulk mail (043,
# 089, 090); the rest were read one by one. Anything not listed must be "ordinary".
CORPUS_EXPECTED = {
    # Exchange DSN: multipart/report, From postmaster, Return-Path <>.
    "mail018": "bounce",
    # Spam with a null envelope sender (Return-Path <>): nothing may answer it (RFC 3834 §2).
    "mail019": "null_sender",
    # An invoice robot: envelope sender noreply@bounce.gate.de.
    "mail026": "noreply",
    # Postfix DSN to a Zammad address: multipart/report, Auto-Submitted, MAILER-DAEMON.
    "mail033-undelivered-mail-returned-to-sender": "bounce",
    # Loan spam with Return-Path <>.
    "mail035": "null_sender",
    # Marketing mail: Precedence: bulk and List-Unsubscribe.
    "mail043": "bulk",
    # Postfix bounce as plain text, From MAILER-DAEMON, Return-Path <>.
    "mail052": "bounce",
    # DSN with a From lacking an address ("MAILER-DAEMON (Mail Delivery System)"):
    # caught by multipart/report and Auto-Submitted.
    "mail053": "bounce",
    "mail055": "bounce",
    "mail063": "bounce",
    # A human's post relayed by a Majordomo list: envelope sender owner-rrga-l@...
    "mail078-content_transfer_encoding_x_uuencode": "bulk",
    # Gmail "Delivery Status Notification (Delay)": a DSN, though not a failure.
    "mail078": "bounce",
    # ServiceNow incident notifications: Auto-Submitted: auto-generated, Precedence: bulk.
    "mail089": "auto_reply",
    "mail090": "auto_reply",
    # DSN with From "MAILER-DAEMON (Mail Delivery System) <postmaster@...>".
    "mail092": "bounce",
    # Order confirmations from noreply@ addresses.
    "mail094": "noreply",
    "mail098": "noreply",
    "mail099": "noreply",
    # Deliberately "ordinary", though automated or unwanted: they carry no signal a
    # protocol defines, and guessing from content would misfile real customers.
    # mail011 (newsletter without List-Id), mail020-023/069/071/076 (spam), mail024/025
    # (Oracle cron output), mail047/066 (marketing without list headers), mail087 (a fax
    # gateway's "Failed Mail" subject, but a normal message with a PDF), mail103/104
    # (JIRA notifications without Auto-Submitted), mail106 (Roundcube test mail).
}


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.box"))


def test_corpus_is_present() -> None:
    """The corpus is where SOURCE.md says, so the table below really ran."""
    assert len(_corpus()) == 116


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.stem)
def test_corpus_classification(path: Path) -> None:
    """Every auto-reply and bounce in the corpus is classified so; ordinary mail is not."""
    raw = path.read_bytes()
    result = _screen(raw)
    expected = CORPUS_EXPECTED.get(path.stem, "ordinary")
    assert result.category == expected, result.reason
    assert result.automatic == (expected in {"bounce", "auto_reply", "loop"})
