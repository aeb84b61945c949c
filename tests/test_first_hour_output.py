"""Issue 25, "the first hour", continued (tests/test_first_hour.py has its start): a
closed pipe is no error; notices list shows every notice; a closed ticket's notices invite
no reply; migrations log one line; --version has one source.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from click.testing import Result

from mailgate import __version__
from mailgate.db.store import Store
from mailgate.outbound.compose import Envelope, compose
from mailgate.outbound.render import SAMPLE, Renderer
from tests.builders import build
from tests.conftest import SECRET
from tests.first_hour_support import ENV, NOW, REPO, mailgate, run, write

# -- 6. a closed pipe is no error -------------------------------------------------------


@pytest.mark.parametrize(
    "args", [("tickets", "list"), ("tickets", "list", "--json"), ("notices", "list"), ("--help",)]
)
def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path, args: tuple[str, ...]) -> None:
    """`mailgate tickets list | head -1` when head has gone: exit 0 and nothing on stderr."""
    conf = write(tmp_path / "mailgate.toml", f'[security]\nsecret = "{SECRET}"\n')
    for n in range(3):
        (tmp_path / f"{n}.eml").write_bytes(build(subject=f"Ticket {n}"))
        assert mailgate(tmp_path, "--config", str(conf), "ingest", f"{n}.eml").returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        result = mailgate(tmp_path, "--config", str(conf), *args, stdout=write_end)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (0, "")


# -- 7. notices list shows notices about no ticket ---------------------------------------


def test_notices_list_shows_notices_without_a_ticket(tmp_path: Path) -> None:
    """An intake refusal (about no ticket) is listed beside the acknowledgement: ticket '-'
    in the table, null in --json."""
    conf = write(
        tmp_path / "mailgate.toml",
        f'[security]\nsecret = "{SECRET}"\n[intake]\npolicy = "known"\n'
        '[[customers]]\nname = "Acme"\ndomains = ["acme.test"]\n',
    )
    for n, sender in enumerate(("jo@acme.test", "stranger@nowhere.test")):
        (tmp_path / f"{n}.eml").write_bytes(build(sender=sender))
        assert run(tmp_path, "--config", str(conf), "ingest", f"{n}.eml").exit_code == 0
    listed = run(tmp_path, "--config", str(conf), "notices", "list", "--json")
    assert [(n["kind"], n["ticket"], n["recipient"]) for n in json.loads(listed.stdout)] == [
        ("intake_refused", None, "stranger@nowhere.test"),
        ("acknowledgement", 1, "jo@acme.test"),
    ]
    table = run(tmp_path, "--config", str(conf), "notices", "list").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "TICKET", "KIND"]
    assert table[1].split()[:3] == ["2", "-", "intake_refused"]
    assert table[2].split()[:3] == ["1", "1", "acknowledgement"]


# -- 8. notices about a closed ticket invite no reply -----------------------------------


def _eml(folder: Path, notice_id: int) -> Message:
    return message_from_bytes((folder / f"notice-{notice_id}.eml").read_bytes())


def test_notices_about_a_closed_ticket_carry_no_reply_address(tmp_path: Path) -> None:
    """'Status changed to Waiting' sent while the ticket is open carries the signed
    Reply-To; 'status changed to Closed' (or Resolved, another closed status) does not,
    nor a notice still pending when its ticket closed."""
    conf = write(tmp_path / "mailgate.toml", f'[security]\nsecret = "{SECRET}"\n')
    outbox = tmp_path / "outbox"

    def cli(*args: str) -> Result:
        result = run(tmp_path, "--config", str(conf), *args)
        assert result.exit_code == 0, result.output
        return result

    def reply_to(ticket: int, subject: str) -> str | None:
        notices = json.loads(cli("notices", "list", "--json").stdout)
        (found,) = [
            _eml(outbox, n["id"])
            for n in notices
            if n["ticket"] == ticket
            and n["kind"] == "status_changed"
            and n["state"] == "sent"
            and _eml(outbox, n["id"])["Subject"] == f"[#{ticket}] Status changed to {subject}"
        ]
        return found["Reply-To"]

    for n in (1, 2):
        (tmp_path / f"{n}.eml").write_bytes(build(subject=f"Ticket {n}"))
        cli("ingest", f"{n}.eml")
    cli("tickets", "status", "1", "Waiting")
    cli("notices", "send")
    assert (reply_to(1, "Waiting") or "").startswith("support+")
    cli("tickets", "close", "1")
    cli("tickets", "status", "2", "Waiting")  # still pending when the ticket closes
    cli("tickets", "status", "2", "Resolved")
    cli("notices", "send")
    assert reply_to(1, "Closed") is None
    assert reply_to(2, "Resolved") is None
    assert reply_to(2, "Waiting") is None
    acknowledgements = [
        n["id"]
        for n in json.loads(cli("notices", "list", "--json").stdout)
        if n["kind"] == "acknowledgement"
    ]
    assert len(acknowledgements) == 2
    assert all(_eml(outbox, i)["Reply-To"] for i in acknowledgements)


def test_compose_gives_a_closed_ticket_no_reply_to() -> None:
    """Whatever the kind, an envelope for a closed ticket gets no Reply-To."""
    rendered = Renderer().render("status_changed", "en", SAMPLE)
    for closed, expected in ((False, True), (True, False)):
        envelope = Envelope(1, "status_changed", "a@b.test", 7, "mg.1.a.b@example.com", "", closed)
        msg = compose(envelope, rendered, from_address="s@example.com", secret=SECRET, now=NOW)
        assert (msg["Reply-To"] is not None) is expected


# -- 9. migrations log one line ---------------------------------------------------------


def test_first_start_logs_one_line_for_a_migration_and_none_of_alembic(tmp_path: Path) -> None:
    """`mailgate run` on a SQLite file two revisions behind: one INFO line saying from and
    to; on a new file, no migration line at all; never Alembic's own lines."""
    head = Store("sqlite://").head_revision()
    old = Store(f"sqlite:///{tmp_path / 'old.db'}")
    old.upgrade("0007_responses")
    old.engine.dispose()
    for db, expected in (
        ("old.db", f"database migrated from 0007_responses to {head}"),
        ("new.db", None),
    ):
        conf = write(
            tmp_path / "mailgate.toml",
            f'[security]\nsecret = "{SECRET}"\n[database]\nurl = "sqlite:///{db}"\n'
            '[run]\nroles = ["worker"]\n',
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(conf), "run"],
            cwd=tmp_path,
            env=ENV,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if not line or line.startswith("mailgate run: roles"):
                break
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
        err = "".join(lines) + rest
        assert proc.returncode == 0, err
        assert "alembic" not in err.lower(), err
        migrated = [line for line in err.splitlines() if "database migrated" in line]
        if expected is None:
            assert migrated == [], err
        else:
            assert len(migrated) == 1 and migrated[0].endswith(
                f"INFO mailgate.db.store: {expected}"
            )


# -- 10. one version --------------------------------------------------------------------


def test_version_has_one_source() -> None:
    """`mailgate --version` prints mailgate.__version__; pyproject reads that, not a copy."""
    result = mailgate(REPO, "--version")
    assert result.stdout == f"mailgate, version {__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "mailgate.__version__"}
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"## [{__version__}]" in changelog and "## [Unreleased]" in changelog
