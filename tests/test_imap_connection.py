"""The IMAP poller's connection to a real Dovecot: logins, TLS, XOAUTH2, refusals, two pollers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailgate.core.settings import ImapMailbox
from mailgate.db import leases
from mailgate.db.models import Ticket
from mailgate.inbound.imap.connect import ImapRefused
from mailgate.inbound.imap.poller import ImapPoller
from tests.dovecot import TOKEN, Dovecot, wait_until
from tests.imap_support import (
    FAST,
    Stores,
    count_rows,
    mailbox,
    message,
    running,
    setup,
)

pytestmark = pytest.mark.dovecot


def test_wrong_password_is_one_clear_line(
    dovecot: Dovecot, stores: Stores, sqlite_url: str
) -> None:
    """A refused login raises one clear line that names the mailbox and never the password."""
    box = mailbox(dovecot, password="wrong-password")
    settings, store = setup(stores, sqlite_url, box)
    with pytest.raises(ImapRefused) as info:
        ImapPoller(box, store=store, settings=settings).run_once()
    text = str(info.value)
    assert text == (
        f"mailbox support: 127.0.0.1:{dovecot.port}: login refused for user 'support': "
        "[AUTHENTICATIONFAILED] Authentication failed."
    )
    assert leases.current(store, "imap:support") is None


def test_wrong_password_waits_long_instead_of_hammering(
    dovecot: Dovecot, stores: Stores, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The watching poller logs a refused login once and waits the long backoff (here
    150 s with jitter at its low end) instead of retrying, and still stops at once."""
    box = mailbox(dovecot, password="wrong-password")
    settings, store = setup(stores, sqlite_url, box)
    poller = ImapPoller(box, store=store, settings=settings, timing=FAST, rand=lambda: 0.0)
    with running(poller):
        wait_until(
            lambda: any("next attempt in" in r.getMessage() for r in caplog.records),
            what="the refusal to be logged",
        )
        # Released while it waits, so a poller elsewhere may try its own credentials.
        wait_until(lambda: leases.current(store, "imap:support") is None, what="the release")
    refusals = [r.getMessage() for r in caplog.records if "login refused" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].endswith("; next attempt in 150s")
    assert "wrong-password" not in caplog.text
    wait_until(dovecot.auth_failures, what="Dovecot to log the failure")
    assert dovecot.auth_failures() == 1


def test_unreachable_server_is_a_temporary_failure(stores: Stores, sqlite_url: str) -> None:
    """Nothing listening: a one-line 'cannot connect' error."""
    from tests.dovecot import free_port

    box = ImapMailbox(name="support", port=free_port(), security="none", password="x")
    settings, store = setup(stores, sqlite_url, box)
    with pytest.raises(Exception) as info:
        ImapPoller(box, store=store, settings=settings).run_once()
    assert "cannot connect: Connection refused" in str(info.value)


def test_two_pollers_one_works_one_waits(dovecot: Dovecot, stores: Stores, db_url: str) -> None:
    """Two pollers on one mailbox and one database: one holds the lease and does all the
    work, the other waits; when the first stops, the second takes over. No duplicates."""
    settings, store = setup(stores, db_url, mailbox(dovecot))
    box = settings.imap.mailboxes[0]
    first = ImapPoller(box, store=store, settings=settings, timing=FAST, holder="first")
    second = ImapPoller(box, store=store, settings=settings, timing=FAST, holder="second")
    dovecot.append("INBOX", [message(i) for i in range(10)])
    with running(first) as stop_first:
        wait_until(lambda: first.passes >= 1, what="the first poller to start")
        with running(second):
            dovecot.append("INBOX", [message(i) for i in range(10, 20)])
            wait_until(lambda: dovecot.count("Processed") == 20, what="all mail")
            assert second.passes == 0
            assert leases.current(store, "imap:support").holder == "first"  # type: ignore[union-attr]
            stop_first.set()
            wait_until(lambda: second.passes >= 1, what="the second poller to take over")
            dovecot.append("INBOX", [message(20)])
            wait_until(lambda: dovecot.count("Processed") == 21, what="the second poller")
    assert (first.stored, second.stored) == (20, 1)
    assert count_rows(store) == 21 and count_rows(store, Ticket) == 21


@pytest.fixture
def tls_dovecot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dovecot]:
    """A Dovecot with a self-signed certificate that this process trusts (SSL_CERT_FILE)."""
    server = Dovecot(tls=True)
    try:
        server.start()
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
        yield server
    finally:
        server.cleanup()


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls(
    tls_dovecot: Dovecot, stores: Stores, sqlite_url: str, security: str
) -> None:
    """Implicit TLS and STARTTLS both verify the certificate and fetch mail."""
    port = tls_dovecot.tls_port if security == "tls" else tls_dovecot.port
    box = mailbox(tls_dovecot, security=security, port=port)
    settings, store = setup(stores, sqlite_url, box)
    tls_dovecot.append("INBOX", [message(1)])
    assert ImapPoller(box, store=store, settings=settings).run_once().stored == 1
    # The test's own helper logs in without TLS; the poller's login is the TLS one.
    logins = [line for line in tls_dovecot.log.read_text().splitlines() if "Login:" in line]
    assert sum(", TLS," in line for line in logins) == 1


def test_untrusted_certificate_is_refused(
    tls_dovecot: Dovecot, stores: Stores, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A certificate nobody vouches for is a configuration problem, said in one line."""
    monkeypatch.delenv("SSL_CERT_FILE")
    box = mailbox(tls_dovecot, security="tls", port=tls_dovecot.tls_port)
    settings, store = setup(stores, sqlite_url, box)
    with pytest.raises(ImapRefused, match=r"TLS certificate not trusted: self.signed certificate"):
        ImapPoller(box, store=store, settings=settings).run_once()


def test_xoauth2_token_from_the_named_environment_variable(
    dovecot: Dovecot, stores: Stores, sqlite_url: str
) -> None:
    """With oauth2_token_env, the poller authenticates with XOAUTH2 and the token in that
    variable; an unset variable is a clear refusal."""
    box = mailbox(dovecot, password="", oauth2_token_env="SUPPORT_TOKEN")
    settings, store = setup(stores, sqlite_url, box)
    dovecot.append("INBOX", [message(1)])
    env = {"SUPPORT_TOKEN": TOKEN}
    assert ImapPoller(box, store=store, settings=settings, env=env).run_once().stored == 1
    assert "method=XOAUTH2" in dovecot.log.read_text()
    with pytest.raises(ImapRefused, match=r"names \$SUPPORT_TOKEN, which is not set"):
        ImapPoller(box, store=store, settings=settings, env={}).run_once()
