"""`mailgate ingest` end to end: the real console script, a real SQLite file."""

from __future__ import annotations

import json
import mailbox
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from mailgate.db.models import InboundMessage, Ticket
from tests.conftest import SECRET
from tests.mail import build


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "mailgate.toml").write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "mailgate.db"}"\n[security]\nsecret = "{SECRET}"\n'
    )
    return tmp_path


def mailgate(
    home: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "MAILGATE_CONFIG": str(home / "mailgate.toml")}
    env.pop("MAILGATE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "mailgate", *args],
        input=stdin,
        capture_output=True,
        cwd=home,
        env=env,
        timeout=60,
        check=False,
    )


def count(home: Path, model: type) -> int:
    engine = create_engine(f"sqlite:///{home / 'mailgate.db'}")
    with engine.connect() as conn:
        value = conn.execute(select(func.count()).select_from(model)).scalar_one()
    engine.dispose()
    return value


def test_one_email_in_one_ticket_out(home: Path) -> None:
    """A sample email ingested from a file becomes one ticket with its requester, subject and body."""
    sample = home / "sample.eml"
    sample.write_bytes(
        build(sender="Carol <carol@customer.test>", subject="VPN is down", body="Since 9am.\n")
    )
    result = mailgate(home, "ingest", str(sample))
    assert result.returncode == 0, result.stderr
    assert b"new_ticket, ticket #1" in result.stdout
    listed = json.loads(mailgate(home, "tickets", "list", "--json").stdout)
    assert len(listed) == 1
    ticket = listed[0]
    assert (ticket["requester"], ticket["requester_name"], ticket["subject"]) == (
        "carol@customer.test",
        "Carol",
        "VPN is down",
    )
    assert (ticket["status"], ticket["type"], ticket["priority"]) == ("New", "General", "Normal")
    shown = json.loads(mailgate(home, "tickets", "show", "1", "--json").stdout)
    assert shown["messages"][0]["body"].strip() == "Since 9am."
    assert shown["history"][0]["action"] == "created"
    human = mailgate(home, "tickets", "show", "1").stdout.decode()
    assert "Ticket #1: VPN is down" in human and "Since 9am." in human


def test_stdin_and_envelope(home: Path) -> None:
    """`ingest -` reads standard input, as an MTA pipe delivers, with the envelope recorded."""
    result = mailgate(
        home,
        "ingest",
        "-",
        "--sender",
        "bounce@customer.test",
        "--recipient",
        "support@example.com",
        stdin=build(),
    )
    assert result.returncode == 0, result.stderr
    engine = create_engine(f"sqlite:///{home / 'mailgate.db'}")
    with engine.connect() as conn:
        row = conn.execute(select(InboundMessage.envelope_from, InboundMessage.envelope_to)).one()
    engine.dispose()
    assert row.envelope_from == "bounce@customer.test" and row.envelope_to == [
        "support@example.com"
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty message"),
        (b"   \r\n\r\n", "empty message"),
        (bytes(range(256)) * 20, "not an email"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not an email"),
        (b"just some words\nno headers here\n", "not an email"),
    ],
)
def test_bad_input_exits_65_with_one_line_and_no_rows(
    home: Path, payload: bytes, reason: str
) -> None:
    """Empty input and non-email bytes exit 65 with a one-line reason and leave no rows."""
    result = mailgate(home, "ingest", "-", stdin=payload)
    assert result.returncode == 65
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and reason in lines[0] and "Traceback" not in lines[0]
    assert count(home, InboundMessage) == 0
    assert count(home, Ticket) == 0


def test_over_size_limit_exits_65(home: Path) -> None:
    """A message over smtp.max_message_bytes is refused as bad input, naming the key."""
    env_home = home
    (env_home / "mailgate.toml").write_text(
        (env_home / "mailgate.toml").read_text() + "[smtp]\nmax_message_bytes = 500\n"
    )
    result = mailgate(home, "ingest", "-", stdin=build(body="x" * 2000))
    assert result.returncode == 65 and b"smtp.max_message_bytes" in result.stderr


def test_database_locked_exits_75(home: Path) -> None:
    """A database held locked by another writer past the busy timeout gives exit 75, nothing half-written."""
    assert mailgate(home, "ingest", "-", stdin=build(subject="first")).returncode == 0
    db = home / "mailgate.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3,sys,time;c=sqlite3.connect(sys.argv[1],isolation_level=None);"
            "c.execute('BEGIN EXCLUSIVE');print('locked',flush=True);time.sleep(60)",
            str(db),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        env = {
            **os.environ,
            "MAILGATE_CONFIG": str(home / "mailgate.toml"),
            "MAILGATE_DATABASE_SQLITE_BUSY_TIMEOUT_MS": "300",
        }
        result = subprocess.run(
            [sys.executable, "-m", "mailgate", "ingest", "-"],
            input=build(subject="second"),
            capture_output=True,
            cwd=home,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        holder.kill()
        holder.communicate()
    assert result.returncode == 75, result.stderr
    assert b"Traceback" not in result.stderr
    assert count(home, InboundMessage) == 1


def test_mbox_import_twice_adds_nothing(home: Path) -> None:
    """An mbox is imported with a summary; importing it again adds nothing."""
    path = home / "archive.mbox"
    box = mailbox.mbox(str(path))
    for i in range(5):
        box.add(build(subject=f"question {i}", message_id=f"<q{i}@customer.test>"))
    box.flush()
    box.close()
    first = mailgate(home, "ingest", "--mbox", str(path))
    assert first.returncode == 0, first.stderr
    assert b"5 messages: 5 stored (5 new tickets), 0 already stored, 0 refused" in first.stdout
    assert first.stderr == b""  # no progress bar off a terminal: cron mails what a job writes
    second = mailgate(home, "ingest", "--mbox", str(path))
    assert b"5 messages: 0 stored (0 new tickets), 5 already stored, 0 refused" in second.stdout
    assert count(home, Ticket) == 5 and count(home, InboundMessage) == 5


def test_maildir_import(home: Path) -> None:
    """A Maildir's messages are all imported; bad entries are reported, good ones kept."""
    md = mailbox.Maildir(str(home / "Maildir"))
    md.add(build(subject="one", message_id="<m1@customer.test>"))
    md.add(build(subject="two", message_id="<m2@customer.test>"))
    md.add(b"")
    result = mailgate(home, "ingest", "--maildir", str(home / "Maildir"))
    assert result.returncode == 0, result.stderr
    assert b"3 messages: 2 stored (2 new tickets), 0 already stored, 1 refused" in result.stdout
    assert b"empty message" in result.stderr
    assert count(home, Ticket) == 2


def test_ingest_usage_errors(home: Path) -> None:
    """A missing file or a non-Maildir folder is a clear one-line error."""
    missing = mailgate(home, "ingest", str(home / "nope.eml"))
    assert missing.returncode == 65 and b"nope.eml: no such file" in missing.stderr
    notmd = mailgate(home, "ingest", "--maildir", str(home))
    assert notmd.returncode == 65 and b"not a Maildir" in notmd.stderr


def test_same_message_id_by_two_routes_is_one_ticket_message(home: Path) -> None:
    """The same message re-delivered with a new trace header (different bytes) adds no second ticket message."""
    raw = build(message_id="<same@customer.test>")
    assert mailgate(home, "ingest", "-", stdin=raw).returncode == 0
    again = mailgate(home, "ingest", "-", stdin=b"Received: from mx2.test\r\n" + raw)
    assert again.returncode == 0 and b"duplicate" in again.stdout
    engine = create_engine(f"sqlite:///{home / 'mailgate.db'}")
    with engine.connect() as conn:
        messages = conn.execute(text("select count(*) from ticket_messages")).scalar_one()
    engine.dispose()
    assert messages == 1 and count(home, Ticket) == 1


@pytest.mark.parametrize(
    ("raw", "defect"),
    [
        (  # truncated in the middle of a base64 attachment, closing boundary never comes
            b"From: a@customer.test\r\nSubject: cut off\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n"
            b"see attachment\r\n--XX\r\nContent-Type: application/pdf; name=a.pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJeLj",
            "CloseBoundaryNotFoundDefect",
        ),
        (  # junk banner before the headers and an unindented continuation line
            b"---- Original message ----\r\nFrom: a@customer.test\r\nX-Long: part one\r\npart two\r\n"
            b"Subject: banner\r\n\r\nbody text\r\n",
            "HeaderRepair",
        ),
        (  # broken encoded word and an unknown charset
            b"From: =?utf-8?q?Br=C3=B6ken?= <a@customer.test>\r\nSubject: =?x-unknown?q?abc?=\r\n"
            b"Content-Type: text/plain; charset=x-unknown\r\n\r\nbody text \xe9\r\n",
            "CharsetDecodeDefect",
        ),
    ],
)
def test_malformed_real_mail_is_stored_and_processed(home: Path, raw: bytes, defect: str) -> None:
    """Malformed but real mail is never refused: it becomes a ticket with its defects recorded."""
    result = mailgate(home, "ingest", "-", stdin=raw)
    assert result.returncode == 0, result.stderr
    assert b"new_ticket" in result.stdout
    shown = json.loads(mailgate(home, "tickets", "show", "1", "--json").stdout)
    assert any(defect in d for d in shown["messages"][0]["defects"]), shown["messages"][0][
        "defects"
    ]


def test_mbox_import_shows_its_progress_at_a_terminal(home: Path) -> None:
    """At a terminal (a real pseudo-terminal here) the import shows its progress bar on
    stderr; the summary is on stdout either way."""
    path = home / "archive.mbox"
    box = mailbox.mbox(str(path))
    box.add(build(subject="question", message_id="<tty@customer.test>"))
    box.flush()
    box.close()
    terminal, attached = pty.openpty()
    env = {**os.environ, "MAILGATE_CONFIG": str(home / "mailgate.toml")}
    env.pop("MAILGATE_DATABASE_URL", None)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mailgate", "ingest", "--mbox", str(path)],
            stdout=subprocess.PIPE,
            stderr=attached,
            cwd=home,
            env=env,
            timeout=60,
            check=False,
        )
        os.close(attached)
        shown = b""
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(terminal)
    assert result.returncode == 0
    assert b"1 message: 1 stored (1 new ticket)" in result.stdout
    assert b"ingesting" in shown and b"100%" in shown, shown
