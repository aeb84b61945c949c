"""Issue 19 items 6 and 7, against a real receiver on 127.0.0.1: AUTH cannot be
brute-forced, and a connection slot cannot be held without moving mail."""

from __future__ import annotations

import base64
import smtplib
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

from mailgate.core import config
from mailgate.core.errors import ConfigError
from mailgate.core.settings import Settings
from mailgate.db import rejection_counts
from mailgate.inbound.smtp.limits import AuthFailures, SessionLimits
from tests.conftest import SECRET
from tests.smtp_support import (
    SUPPORT,
    RawClient,
    count,
    message,
    reading,
    serving,
    smtp_settings,
    wait_until,
)
from tests.test_smtp_tls import certificate  # noqa: F401 - the fixture

pytestmark = pytest.mark.faults  # the security part of the fault suite (issue 19)

USER, PASSWORD = "relay", "correct horse battery staple"
DELAY = 0.05  # seconds: auth_failure_delay_ms in these tests


def _plain(password: str) -> str:
    return "PLAIN " + base64.b64encode(f"\0{USER}\0{password}".encode()).decode()


def _auth_settings(tmp_path: Path, tls_files: tuple[Path, Path], **limits: Any) -> Settings:
    cert, key = tls_files
    return smtp_settings(
        f"sqlite:///{tmp_path / 'm.db'}",
        tls="starttls",
        tls_cert=str(cert),
        tls_key=str(key),
        auth_username=USER,
        auth_password=PASSWORD,
        **limits,
    )


def _secure(host: str, port: int, cert: Path) -> smtplib.SMTP:
    """A client past STARTTLS and EHLO, so AUTH is offered."""
    client = smtplib.SMTP(host, port, timeout=10)
    client.starttls(context=ssl.create_default_context(cafile=str(cert)))
    client.ehlo()
    return client


def _refusals(settings: Settings) -> dict[str, int]:
    """Refusals written by the receiver (it flushes when it stops), by reason."""
    with reading(settings) as session:
        written = rejection_counts.totals(session)
    return {reason: n for (source, reason), n in written.items() if source == "smtp"}


def _closed(client: smtplib.SMTP) -> bool:
    try:
        client.noop()
    except smtplib.SMTPServerDisconnected:
        return True
    return False


# Item 6: AUTH cannot be brute-forced.


def test_failed_auth_is_slowed_then_the_connection_is_closed(
    tmp_path: Path,
    certificate: tuple[Path, Path],  # noqa: F811
) -> None:
    """Each 535 comes after a delay that doubles (0.05, 0.1, 0.2 s); after the third
    failure the connection gets 421 4.7.0 and is closed, and every failure is counted."""
    settings = _auth_settings(
        tmp_path,
        certificate,
        auth_failure_delay_ms=int(DELAY * 1000),
        auth_max_failures_per_connection=3,
        auth_max_failures_per_client=100,
    )
    waits = []
    with serving(settings) as srv:
        client = _secure(srv.host, srv.port, certificate[0])
        with client:
            for _ in range(3):
                started = time.monotonic()
                code, _reply = client.docmd("AUTH", _plain("wrong password"))
                waits.append(time.monotonic() - started)
                assert code == 535
            code, reply = client.getreply()
            assert code == 421 and reply.startswith(b"4.7.0 Too many failed authentication")
            assert _closed(client)
    print(f"\nwaits before each 535: {', '.join(f'{w:.3f}' for w in waits)} s")
    assert [w >= DELAY * 2**i for i, w in enumerate(waits)] == [True, True, True], waits
    assert _refusals(settings) == {"auth_failed": 3, "auth_throttled": 1}


def test_a_client_over_its_auth_limit_is_refused_before_any_password_check(
    tmp_path: Path,
    certificate: tuple[Path, Path],  # noqa: F811
) -> None:
    """Failures add up across connections per client address: past 5, AUTH is answered
    421 at once, not even asking for the password, and the right password does not help."""
    settings = _auth_settings(
        tmp_path,
        certificate,
        auth_failure_delay_ms=0,
        auth_max_failures_per_connection=3,
        auth_max_failures_per_client=5,
        auth_failure_window_seconds=600,
    )
    with serving(settings) as srv:
        with _secure(srv.host, srv.port, certificate[0]) as first:
            assert [first.docmd("AUTH", _plain("guess"))[0] for _ in range(3)] == [535] * 3
            assert first.getreply()[0] == 421
        with _secure(srv.host, srv.port, certificate[0]) as second:
            assert [second.docmd("AUTH", _plain("guess"))[0] for _ in range(2)] == [535] * 2
            code, reply = second.docmd("AUTH", _plain(PASSWORD))
            assert code == 421 and b"from your address" in reply
            assert _closed(second)
        with _secure(srv.host, srv.port, certificate[0]) as third:
            # Without an initial response the server would ask (334) for the credentials.
            code, reply = third.docmd("AUTH", "PLAIN")
            assert code == 421 and b"from your address" in reply
            assert _closed(third)
        assert srv.server.auth_failures.locked_out("127.0.0.1")
    assert count(settings) == 0
    assert _refusals(settings) == {"auth_failed": 5, "auth_throttled": 3}


def test_pipelined_guesses_past_the_limit_are_never_checked(
    tmp_path: Path,
    certificate: tuple[Path, Path],  # noqa: F811
) -> None:
    """Six AUTH lines sent at once: three are checked and answered 535, then 421 and
    the connection is closed; the rest are read but never checked."""
    settings = _auth_settings(
        tmp_path,
        certificate,
        auth_failure_delay_ms=0,
        auth_max_failures_per_connection=3,
        auth_max_failures_per_client=100,
    )
    with serving(settings) as srv, _secure(srv.host, srv.port, certificate[0]) as client:
        assert client.sock is not None
        client.sock.sendall("".join(f"AUTH {_plain('guess')}\r\n" for _ in range(6)).encode())
        assert [client.getreply()[0] for _ in range(4)] == [535, 535, 535, 421]
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.getreply()
    assert _refusals(settings) == {"auth_failed": 3, "auth_throttled": 1}


def test_right_credentials_still_work_below_the_limits(
    tmp_path: Path,
    certificate: tuple[Path, Path],  # noqa: F811
) -> None:
    """A mistyped password then the right one: authenticated and the message stored."""
    settings = _auth_settings(tmp_path, certificate, auth_failure_delay_ms=int(DELAY * 1000))
    with serving(settings) as srv, _secure(srv.host, srv.port, certificate[0]) as client:
        assert client.docmd("AUTH", _plain("typo"))[0] == 535
        assert client.docmd("AUTH", _plain(PASSWORD))[0] == 235
        assert client.sendmail("alice@customer.test", [SUPPORT], message(1)) == {}
    assert count(settings) == 1


def test_auth_failures_window_ends_the_lockout_and_memory_is_bounded() -> None:
    """Locked out at `limit` failures within the window, free once the oldest is that old;
    the least recently failed address is forgotten first past `max_clients`."""
    now = [1000.0]
    failures = AuthFailures(limit=3, window=60, clock=lambda: now[0], max_clients=2)
    for _ in range(3):
        assert not failures.locked_out("192.0.2.1")
        failures.add("192.0.2.1")
        now[0] += 10
    assert failures.locked_out("192.0.2.1")  # 3 failures in the last 30 s
    now[0] = 1059.9
    assert failures.locked_out("192.0.2.1")
    now[0] = 1060.0
    assert not failures.locked_out("192.0.2.1")  # the first is 60 s old
    failures.add("192.0.2.1")  # now 1010, 1020, 1060: locked again until 1070
    assert failures.locked_out("192.0.2.1")
    failures.add("192.0.2.2")
    failures.add("192.0.2.3")
    assert len(failures) == 2 and not failures.locked_out("192.0.2.1")


def test_auth_delay_doubles_and_is_capped() -> None:
    limits = SessionLimits(
        max_idle_commands=20, max_session_seconds=600, auth_max_failures=3, auth_failure_delay=1
    )
    assert [limits.auth_delay(n) for n in (1, 2, 3, 4, 6, 10)] == [1, 2, 4, 8, 30, 30]


# Item 7: a connection slot cannot be held for free.


def test_commands_that_move_no_mail_are_capped_per_session(tmp_path: Path) -> None:
    """NOOP, RSET, VRFY, unknown commands and a repeated EHLO count; the one past
    smtp.max_idle_commands gets 421 4.7.0 and the connection is closed. A stored
    message starts the count again (a relay's RSET between messages is no abuse)."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}", max_idle_commands=5)
    with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port, timeout=10) as client:
        assert client.ehlo()[0] == 250  # the first greeting is not idle
        for _ in range(4):
            assert client.noop()[0] == 250
        assert client.sendmail("alice@customer.test", [SUPPORT], message(1)) == {}
        assert client.noop()[0] == 250
        assert client.rset()[0] == 250
        assert client.docmd("XYZZY")[0] == 500
        assert client.docmd("VRFY", "support")[0] in (252, 502)
        assert client.ehlo()[0] == 250  # a second EHLO moves no mail either
        code, reply = client.docmd("NOOP")
        assert code == 421 and reply.startswith(b"4.7.0 Too many commands without mail")
        assert _closed(client)
    assert count(settings) == 1
    assert _refusals(settings) == {"idle_commands": 1}


def test_a_session_is_closed_after_max_session_seconds(tmp_path: Path) -> None:
    """A greeted, silent session (idle_timeout far away) gets 421 4.7.0 once
    smtp.max_session_seconds are up."""
    settings = smtp_settings(
        f"sqlite:///{tmp_path / 'm.db'}", max_session_seconds=1, idle_timeout=60
    )
    with serving(settings) as srv, RawClient(srv.host, srv.port, timeout=20) as raw:
        started = time.monotonic()
        assert raw.reply()[0] == 220
        raw.send(b"EHLO c.test\r\n")
        assert raw.reply()[0] == 250
        code, lines = raw.reply()  # blocks until the server speaks
        lasted = time.monotonic() - started
        assert code == 421 and lines[0].startswith("4.7.0 Session time limit")
        assert raw.closed_by_server()
    assert 0.9 <= lasted < 10, lasted
    assert _refusals(settings) == {"session_too_long": 1}


def test_a_message_in_flight_at_max_session_seconds_is_finished_first(tmp_path: Path) -> None:
    """The lifetime ends during DATA: the message is still taken and answered 250, and
    only then the session gets 421."""
    settings = smtp_settings(
        f"sqlite:///{tmp_path / 'm.db'}", max_session_seconds=1, idle_timeout=60, data_timeout=60
    )
    content = message(1)
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
        raw.send(content[:40])
        [session] = srv.server.gate.connections()
        wait_until(lambda: session.expired, what="the session's lifetime to run out")
        raw.send(content[40:] + b".\r\n")
        assert raw.reply()[0] == 250
        code, lines = raw.reply()
        assert code == 421 and lines[0].startswith("4.7.0 Session time limit")
        assert raw.closed_by_server()
    assert count(settings) == 1


def test_a_transaction_that_never_reaches_data_is_cut_off(tmp_path: Path) -> None:
    """Open at the end of its lifetime, a transaction gets data_timeout more to reach
    DATA; a client that stays between RCPT and DATA is then closed with 421."""
    settings = smtp_settings(
        f"sqlite:///{tmp_path / 'm.db'}", max_session_seconds=1, idle_timeout=60, data_timeout=1
    )
    with serving(settings) as srv, RawClient(srv.host, srv.port, timeout=20) as raw:
        started = time.monotonic()
        assert raw.reply()[0] == 220
        for command in (
            b"EHLO c.test",
            b"MAIL FROM:<alice@customer.test>",
            b"RCPT TO:<support@example.com>",
        ):
            raw.send(command + b"\r\n")
            assert raw.reply()[0] == 250
        code, lines = raw.reply()
        lasted = time.monotonic() - started
        assert code == 421 and lines[0].startswith("4.7.0 Session time limit")
        assert raw.closed_by_server()
    assert 1.8 <= lasted < 10, lasted
    assert count(settings) == 0
    assert _refusals(settings) == {"session_too_long": 1}


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("auth_max_failures_per_connection", 0, "expected a positive integer"),
        ("auth_max_failures_per_client", 0, "expected a positive integer"),
        ("auth_failure_window_seconds", 0, "expected a positive integer"),
        ("auth_failure_delay_ms", 30_001, "expected milliseconds from 0 to 30000"),
        ("auth_failure_delay_ms", -1, "expected milliseconds from 0 to 30000"),
        ("max_idle_commands", 0, "expected a positive integer"),
        ("max_session_seconds", 0, "expected a positive integer"),
    ],
)
def test_limits_are_validated(tmp_path: Path, key: str, value: int, text: str) -> None:
    """Each key is checked, from a file or from the environment ($MAILGATE_SMTP_...)."""
    path = tmp_path / "mailgate.toml"
    path.write_text(f'[security]\nsecret = "{SECRET}"\n[smtp]\n{key} = {value}\n')
    with pytest.raises(ConfigError) as refused:
        config.load(path, {})
    assert f"smtp.{key}: {text}" in str(refused.value)
    path.write_text(f'[security]\nsecret = "{SECRET}"\n')
    loaded = config.load(path, {f"MAILGATE_SMTP_{key.upper()}": "7"})
    assert getattr(loaded.smtp, key) == 7
