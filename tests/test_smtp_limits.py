"""LMTP replies per recipient, connection limits and timeouts, against a real receiver."""

from __future__ import annotations

import smtplib
import socket
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.smtp_support import RawClient, count, message, rows, serving, smtp_settings, wait_until


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'm.db'}"


def test_lmtp_answers_once_per_accepted_recipient(tmp_path: Path) -> None:
    """LHLO, a refused recipient among good ones, then one 250 per accepted recipient (RFC 2033)."""
    settings = smtp_settings(_db(tmp_path), protocol="lmtp")
    with serving(settings) as srv, smtplib.LMTP(srv.host, srv.port) as client:
        assert client.ehlo()[0] == 250  # smtplib.LMTP sends LHLO
        assert client.docmd("EHLO", "c.test")[0] == 500  # not an LMTP command
        client.mail("alice@customer.test")
        assert client.rcpt("support@example.com")[0] == 250
        assert client.rcpt("bob@elsewhere.test")[0] == 550
        assert client.rcpt("support+sales@example.com")[0] == 250
        first = client.data(message(1))
        second = client.getreply()
        assert first[0] == 250 and second[0] == 250
        assert client.noop()[0] == 250  # no third reply was pending
    [row] = rows(settings)
    assert row.envelope_to == ["support@example.com", "support+sales@example.com"]
    assert b"with LMTP" in row.raw


def test_lmtp_failures_are_answered_per_recipient(tmp_path: Path) -> None:
    """Oversize (552) and storage failure (451) also get one reply per recipient."""
    settings = smtp_settings(_db(tmp_path), protocol="lmtp", max_message_bytes=2000)
    big = message(body=("y" * 70 + "\r\n") * 60)
    with serving(settings) as srv, smtplib.LMTP(srv.host, srv.port) as client:
        client.ehlo()
        for content, code in ((big, 552), (message(1), 451)):
            if code == 451:
                with srv.store.engine.begin() as conn:
                    conn.execute(text("ALTER TABLE inbound_messages RENAME TO inbound_away"))
            client.mail("alice@customer.test")
            client.rcpt("support@example.com")
            client.rcpt("support+two@example.com")
            assert client.data(content)[0] == code
            assert client.getreply()[0] == code
            assert client.noop()[0] == 250
        with srv.store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE inbound_away RENAME TO inbound_messages"))
    assert count(settings) == 0


@pytest.mark.parametrize(
    "limits",
    [
        {"max_connections": 2, "max_connections_per_ip": 10},
        {"max_connections": 10, "max_connections_per_ip": 2},
    ],
)
def test_connection_over_a_limit_gets_421(tmp_path: Path, limits: dict[str, Any]) -> None:
    """The connection past max_connections (or per-IP) is greeted 421 4.7.0 and closed."""
    settings = smtp_settings(_db(tmp_path), **limits)
    with serving(settings) as srv, ExitStack() as stack:
        first = stack.enter_context(smtplib.SMTP(srv.host, srv.port))
        stack.enter_context(smtplib.SMTP(srv.host, srv.port))
        with RawClient(srv.host, srv.port) as third:
            code, lines = third.reply()
            assert code == 421 and lines[0].startswith("4.7.0")
            assert third.closed_by_server()
        first.quit()
        wait_until(lambda: srv.server.connection_count == 1, what="a slot to free up")
        with smtplib.SMTP(srv.host, srv.port) as again:
            assert again.noop()[0] == 250


def test_idle_connection_is_closed_after_idle_timeout(tmp_path: Path) -> None:
    """A client that says nothing for smtp.idle_timeout seconds is disconnected."""
    settings = smtp_settings(_db(tmp_path), idle_timeout=1)
    with serving(settings) as srv, RawClient(srv.host, srv.port, timeout=10) as raw:
        assert raw.reply()[0] == 220
        assert raw.closed_by_server()


def test_stalled_data_is_cut_off_after_data_timeout(tmp_path: Path) -> None:
    """During DATA, smtp.data_timeout applies (shorter here than idle_timeout); nothing stored."""
    settings = smtp_settings(_db(tmp_path), idle_timeout=60, data_timeout=1)
    with serving(settings) as srv, RawClient(srv.host, srv.port, timeout=20) as raw:
        assert raw.reply()[0] == 220
        for command, code in (
            (b"EHLO c.test", 250),
            (b"MAIL FROM:<alice@customer.test>", 250),
            (b"RCPT TO:<support@example.com>", 250),
            (b"DATA", 354),
        ):
            raw.send(command + b"\r\n")
            assert raw.reply()[0] == code
        raw.send(message(1)[:40])
        assert raw.closed_by_server()
    assert count(settings) == 0


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this host")
def test_ipv6_listener_records_the_client(tmp_path: Path) -> None:
    """`[::1]:port` listens on IPv6; the row and the Received: header carry the v6 client."""
    settings = smtp_settings(_db(tmp_path), listen="[::1]:0")
    with serving(settings) as srv, smtplib.SMTP("::1", srv.port) as client:
        assert srv.host == "::1"
        assert client.sendmail("alice@customer.test", ["support@example.com"], message(1)) == {}
    [row] = rows(settings)
    assert row.client_address == "::1"
    assert b"([IPv6:::1])" in row.raw
