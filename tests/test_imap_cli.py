"""``mailgate imap`` end to end: --once, exit codes, one-line errors, signals, resume after kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import func, select, update

from mailgate.db.models import InboundMessage, Lease, Ticket
from mailgate.db.store import Store
from mailgate.inbound.imap import cursor as imap_cursor
from tests.conftest import SECRET
from tests.databases import migrate
from tests.dovecot import PASSWORD, Dovecot, free_port, wait_until
from tests.imap_support import message

pytestmark = pytest.mark.dovecot
REPO = Path(__file__).resolve().parents[1]


def write_config(path: Path, *mailboxes: str, db: Path | None = None) -> Path:
    db = db or path.parent / "mailgate.db"
    path.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n[security]\nsecret = "{SECRET}"\n'
        + "".join(mailboxes)
    )
    return path


def box(name: str, port: int, *, password: str = PASSWORD, extra: str = "") -> str:
    return (
        f'[[imap.mailboxes]]\nname = "{name}"\nport = {port}\nsecurity = "none"\n'
        f'username = "support"\npassword = "{password}"\npoll_interval = 1\n{extra}'
    )


def count(db: Path, model: type = InboundMessage) -> int:
    store = Store(f"sqlite:///{db}")
    try:
        with store.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        store.engine.dispose()


def expire_leases(db: Path) -> None:
    """Fast-forward past every lease's expiry, as if its dead holder's 60 s had passed."""
    store = Store(f"sqlite:///{db}")
    try:
        with store.transaction() as session:
            session.execute(update(Lease).values(expires_at=datetime(2000, 1, 1, tzinfo=UTC)))
    finally:
        store.engine.dispose()


def mailgate(config: Path, *args: str) -> subprocess.Popen[str]:
    """The real ``mailgate`` command in a child process, this worktree on its path."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=config.parent,
    )


def test_once_stores_moves_and_reports(
    cli: Callable[..., Result], dovecot: Dovecot, tmp_path: Path
) -> None:
    """`mailgate imap --once` turns new mail into tickets, moves it, says so, exits 0;
    run again it finds nothing."""
    write_config(tmp_path / "mailgate.toml", box("support", dovecot.port))
    dovecot.append("INBOX", [message(i) for i in range(3)])

    result = cli("imap", "--once")

    assert result.exit_code == 0, result.output
    assert (
        result.stdout == "mailbox support: 3 new, 3 stored, 0 already stored, 0 left in 'INBOX'\n"
    )
    assert count(tmp_path / "mailgate.db", Ticket) == 3
    assert dovecot.count("INBOX") == 0 and dovecot.count("Processed") == 3
    again = cli("imap", "--once")
    assert again.exit_code == 0 and again.stdout.startswith("mailbox support: 0 new")


def test_once_with_wrong_password_exits_75_with_one_line(
    cli: Callable[..., Result], dovecot: Dovecot, tmp_path: Path
) -> None:
    """A refused login: exit 75 (EX_TEMPFAIL), one line on stderr, no traceback, no password."""
    write_config(tmp_path / "mailgate.toml", box("support", dovecot.port, password="nope-nope"))

    result = cli("imap", "--once")

    assert result.exit_code == 75
    assert _said(result.stderr) == [
        f"mailgate: mailbox support: 127.0.0.1:{dovecot.port}: login refused for user "
        "'support': [AUTHENTICATIONFAILED] Authentication failed."
    ]
    assert "Traceback" not in result.output and "nope-nope" not in result.output


def test_once_reads_the_good_mailboxes_and_names_the_unreachable_one(
    cli: Callable[..., Result], dovecot: Dovecot, tmp_path: Path
) -> None:
    """One mailbox down does not stop the others; the exit code still says 75."""
    dead = free_port()
    write_config(tmp_path / "mailgate.toml", box("down", dead), box("support", dovecot.port))
    dovecot.append("INBOX", [message(1)])

    result = cli("imap", "--once")

    assert result.exit_code == 75
    assert _said(result.stderr) == [
        f"mailgate: mailbox down: 127.0.0.1:{dead}: cannot connect: Connection refused"
    ]
    assert "mailbox support: 1 new, 1 stored" in result.stdout


def test_no_mailboxes_is_a_config_error(cli: Callable[..., Result], tmp_path: Path) -> None:
    """Without [[imap.mailboxes]] there is nothing to poll: exit 2 with the key named."""
    write_config(tmp_path / "mailgate.toml")
    result = cli("imap", "--once")
    assert result.exit_code == 2 and "imap.mailboxes: none configured" in result.stderr


def test_processed_folder_must_differ_from_folder(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    """Moving mail into the folder it is read from would read it forever: refused at start."""
    write_config(
        tmp_path / "mailgate.toml", box("support", 143, extra='processed_folder = "INBOX"\n')
    )
    result = cli("check-config")
    assert result.exit_code == 2
    assert "imap.mailboxes[0].processed_folder: must differ from folder" in result.stderr


def test_sigterm_and_sigint_stop_the_watcher_cleanly(dovecot: Dovecot, tmp_path: Path) -> None:
    """`mailgate imap` watches until SIGTERM, then SIGINT in a second run: exit 0 both times,
    no traceback, the lease given back."""
    config = write_config(tmp_path / "mailgate.toml", box("support", dovecot.port))
    for i, signum in enumerate((signal.SIGTERM, signal.SIGINT)):
        proc = mailgate(config, "imap")
        try:
            dovecot.append("INBOX", [message(i)])
            wait_until(lambda n=i + 1: dovecot.count("Processed") == n, what="the watcher")
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "stopping after the message in hand" in err
    from mailgate.db import leases

    store = Store(f"sqlite:///{tmp_path / 'mailgate.db'}")
    try:
        assert leases.current(store, "imap:support") is None
    finally:
        store.engine.dispose()


def test_killed_mid_drain_resumes_from_the_last_uid(dovecot: Dovecot, tmp_path: Path) -> None:
    """SIGKILL while draining a large mailbox, then run again: it resumes after the last
    saved UID, every message is stored exactly once and acknowledged."""
    total, batch = 200, 10
    db = tmp_path / "mailgate.db"
    config = write_config(
        tmp_path / "mailgate.toml",
        box("support", dovecot.port, extra=f'after_store = "seen"\nbatch_size = {batch}\n'),
    )
    with dovecot.client() as client:
        client.multiappend("INBOX", [message(i) for i in range(total)])
    migrate(f"sqlite:///{db}")  # so the test can count rows from the start

    proc = mailgate(config, "imap", "--once")
    try:
        wait_until(lambda: count(db) >= 40 or proc.poll() is not None, what="40 stored")
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL, "the drain finished before it could be killed"
    store = Store(f"sqlite:///{db}")
    try:
        cursor = imap_cursor.load(store, "support")
    finally:
        store.engine.dispose()
    assert cursor is not None and 0 < cursor.last_uid < total
    stored_before = count(db)
    assert cursor.last_uid <= stored_before <= cursor.last_uid + batch

    # The dead process still holds the lease until it expires: a run now stands back.
    early = mailgate(config, "imap", "--once")
    out, err = early.communicate(timeout=60)
    assert early.returncode == 0, err
    assert out.startswith("mailbox support: skipped, another poller is active")
    expire_leases(db)

    again = mailgate(config, "imap", "--once")
    out, err = again.communicate(timeout=120)

    assert again.returncode == 0, err
    resumed = total - cursor.last_uid
    already = stored_before - cursor.last_uid
    assert out.startswith(
        f"mailbox support: {resumed} new, {resumed - already} stored, {already} already stored"
    )
    assert f"mailbox support: {resumed}/{resumed} stored" in err  # progress lines
    assert count(db) == total
    with dovecot.client() as client:
        client.select_folder("INBOX", readonly=True)
        assert len(client.search(["SEEN"])) == total


def _said(stderr: str) -> list[str]:
    """The lines mailgate addressed to the user, without the INFO log lines beside them."""
    return [line for line in stderr.splitlines() if line.startswith("mailgate:")]
