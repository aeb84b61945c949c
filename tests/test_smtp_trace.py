"""The Received: trace header, as values in and bytes out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailgate.inbound.smtp.trace import Hop, received_header, with_protocol

AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("hop", "expected"),
    [
        (Hop("h", "1.2.3.4", "mx", extended=False), "SMTP"),
        (Hop("h", "1.2.3.4", "mx"), "ESMTP"),
        (Hop("h", "1.2.3.4", "mx", tls=True), "ESMTPS"),
        (Hop("h", "1.2.3.4", "mx", tls=True, authenticated=True), "ESMTPSA"),
        (Hop("h", "1.2.3.4", "mx", extended=False, tls=True), "ESMTPS"),
        (Hop("h", "1.2.3.4", "mx", lmtp=True), "LMTP"),
        (Hop("h", "1.2.3.4", "mx", lmtp=True, tls=True, authenticated=True), "LMTPSA"),
        (Hop("h", "1.2.3.4", "mx", smtputf8=True), "UTF8SMTP"),
        (Hop("h", "1.2.3.4", "mx", smtputf8=True, tls=True), "UTF8SMTPS"),
        (Hop("h", "1.2.3.4", "mx", lmtp=True, smtputf8=True), "UTF8LMTP"),
    ],
)
def test_with_protocol_names(hop: Hop, expected: str) -> None:
    """The `with` keyword follows RFC 3848 and RFC 6531 §3.7.3."""
    assert with_protocol(hop) == expected


@pytest.mark.parametrize(
    ("hop", "expected"),
    [
        (
            Hop("mta.test", "192.0.2.7", "mx.example.com", recipients=("support@example.com",)),
            b"Received: from mta.test ([192.0.2.7])\r\n"
            b"\tby mx.example.com (mailgate) with ESMTP\r\n"
            b"\tfor <support@example.com>; Mon, 05 Jan 2026 09:30:00 +0000\r\n",
        ),
        (
            Hop("mta.test", "2001:db8::1", "mx", recipients=("a@example.com", "b@example.com")),
            b"Received: from mta.test ([IPv6:2001:db8::1])\r\n"
            b"\tby mx (mailgate) with ESMTP; Mon, 05 Jan 2026 09:30:00 +0000\r\n",
        ),
        (
            Hop("evil\r\nX-Injected: 1 (x)", "192.0.2.7", "mx"),
            b"Received: from evil??X-Injected:?1??x? ([192.0.2.7])\r\n"
            b"\tby mx (mailgate) with ESMTP; Mon, 05 Jan 2026 09:30:00 +0000\r\n",
        ),
        (
            Hop("", "192.0.2.7", "mx", recipients=("support+ñ@example.com",)),
            b"Received: from unknown ([192.0.2.7])\r\n\tby mx (mailgate) with ESMTP\r\n"
            b"\tfor <support+?@example.com>; Mon, 05 Jan 2026 09:30:00 +0000\r\n",
        ),
        (
            Hop("h", "192.0.2.7", "mx", smtputf8=True, recipients=("support+ñ@example.com",)),
            "Received: from h ([192.0.2.7])\r\n\tby mx (mailgate) with UTF8SMTP\r\n"
            "\tfor <support+ñ@example.com>; Mon, 05 Jan 2026 09:30:00 +0000\r\n".encode(),
        ),
    ],
)
def test_received_header(hop: Hop, expected: bytes) -> None:
    """Client words made header-safe; `for` only for one recipient; UTF-8 only with SMTPUTF8."""
    assert received_header(hop, AT) == expected


def test_received_header_bounds_a_long_helo() -> None:
    """A HELO of any length yields header lines well under 998 octets (RFC 5322 §2.1.1)."""
    header = received_header(Hop("h" * 5000, "192.0.2.7", "mx"), AT)
    assert max(len(line) for line in header.split(b"\r\n")) < 998
