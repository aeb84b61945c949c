"""Issue 25, "the first hour": what a new user met, through the real CLI on real SQLite files.

Relative paths follow the config file; read-only commands never create an empty database;
check-config names every problem at once and checks web.base_url against web.listen; a
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
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from mailgate import __version__
from mailgate.cli import cli as command
from mailgate.cli.context import NO_NEW_DATABASE
from mailgate.core import config
from mailgate.core.settings import Settings
from mailgate.db.store import Store
from mailgate.outbound.compose import Envelope, compose
from mailgate.outbound.render import SAMPLE, Renderer
from tests.builders import build
from tests.conftest import SECRET

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def run(cwd: Path, *args: str, input: bytes | None = None) -> Result:
    """``mailgate ARGS`` in-process, from folder ``cwd`` (CliRunner keeps stderr apart)."""
    before = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(command, list(args), input=input)
    finally:
        os.chdir(before)


def mailgate(
    cwd: Path, *args: str, stdout: int = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    """``python3 -m mailgate ARGS``, a real process, from folder ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "mailgate", *args],
        cwd=cwd,
        env=ENV,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- 2. relative paths follow the config file ------------------------------------------


def test_relative_paths_in_a_config_file_follow_its_folder(tmp_path: Path) -> None:
    """Every file and folder key, and the defaults mailgate.db and outbox, resolve against
    the config file's folder; the environment and the built-in defaults keep the current one."""
    path = write(
        tmp_path / "srv" / "mailgate.toml",
        f'[security]\nsecret = "{SECRET}"\n'
        '[smtp]\ntls_cert = "tls/cert.pem"\ntls_key = "/etc/ssl/key.pem"\n'
        '[outbound]\ntemplates = "my-templates"\n[outbound.smtp]\nca_file = "ca.pem"\n'
        '[logging]\nfile = "log/mailgate.log"\n',
    )
    srv = tmp_path / "srv"
    s = config.load(path, {})
    assert s.database.url == f"sqlite:///{srv / 'mailgate.db'}"
    assert s.outbound.folder == str(srv / "outbox")
    assert s.outbound.templates == str(srv / "my-templates")
    assert s.outbound.smtp.ca_file == str(srv / "ca.pem")
    assert s.smtp.tls_cert == str(srv / "tls" / "cert.pem")
    assert s.smtp.tls_key == "/etc/ssl/key.pem"  # absolute stays
    assert s.logging.file == str(srv / "log" / "mailgate.log")

    write(
        path, f'[security]\nsecret = "{SECRET}"\n[database]\nurl = "sqlite:///db/m.db?mode=rwc"\n'
    )
    assert config.load(path, {}).database.url == f"sqlite:///{srv / 'db' / 'm.db'}?mode=rwc"
    write(path, f'[security]\nsecret = "{SECRET}"\n[database]\nurl = "sqlite:////abs/m.db"\n')
    assert config.load(path, {}).database.url == "sqlite:////abs/m.db"
    # From the environment, or with no file at all: the current folder, as before.
    env = {"MAILGATE_DATABASE_URL": "sqlite:///here.db", "MAILGATE_OUTBOUND_FOLDER": "out"}
    s = config.load(path, env)
    assert (s.database.url, s.outbound.folder) == ("sqlite:///here.db", "out")
    assert config.load(None, {}).database.url == Settings().database.url == "sqlite:///mailgate.db"


def test_config_from_another_folder_uses_the_database_beside_it(tmp_path: Path) -> None:
    """`mailgate --config /srv/mg/mailgate.toml` from anywhere reads /srv/mg/mailgate.db and
    writes notices to /srv/mg/outbox: the ticket ingested from one folder is listed from another."""
    srv, elsewhere, other = tmp_path / "srv", tmp_path / "home", tmp_path / "tmp"
    for folder in (srv, elsewhere, other):
        folder.mkdir()
    assert run(srv, "init").exit_code == 0  # writes ./mailgate.toml with relative defaults
    conf = str(srv / "mailgate.toml")
    (elsewhere / "hello.eml").write_bytes(build(subject="VPN is down"))
    ingested = run(elsewhere, "--config", conf, "ingest", "hello.eml")
    assert ingested.exit_code == 0, ingested.output
    listed = run(other, "--config", conf, "tickets", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [t["subject"] for t in json.loads(listed.stdout)] == ["VPN is down"]
    assert (srv / "mailgate.db").exists() and list((srv / "outbox").glob("notice-*.eml"))
    assert sorted(p.name for p in elsewhere.iterdir()) == ["hello.eml"]
    assert list(other.iterdir()) == []


# -- 2. commands that only read create no database --------------------------------------

READERS = [
    ("tickets list", ()),
    ("tickets show", ("1",)),
    ("tickets reply", ("1", "--file", "-")),
    ("stats", ()),
    ("notices list", ()),
    ("inbound list", ()),
    ("agents list", ()),
    ("db current", ()),
]


@pytest.mark.parametrize(("name", "args"), READERS, ids=[r[0] for r in READERS])
def test_a_reader_on_a_missing_database_says_so_and_creates_nothing(
    tmp_path: Path, name: str, args: tuple[str, ...]
) -> None:
    """One line on stderr naming the file, exit 1, no file and no folder made."""
    conf = write(
        tmp_path / "mailgate.toml",
        f'[security]\nsecret = "{SECRET}"\n[database]\nurl = "sqlite:///data/m.db"\n',
    )
    result = run(tmp_path, "--config", str(conf), *name.split(), *args, input=b"text")
    assert result.exit_code == 1, result.output
    db = tmp_path / "data" / "m.db"
    assert result.stderr == (
        f"mailgate: no database at {db} (database.url of {conf}); "
        f"`mailgate {name}` does not create one\n"
    )
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mailgate.toml"]


def test_readers_name_real_commands_and_writers_still_create_the_database(
    tmp_path: Path,
) -> None:
    """NO_NEW_DATABASE names only commands that exist; ingest (a writer) creates the file,
    and a reader then works on it."""
    names: set[str] = set()

    def walk(group: click.Command, prefix: str) -> None:
        if not isinstance(group, click.Group):
            return
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            path = f"{prefix} {name}".strip()
            names.add(path)
            sub = group.get_command(ctx, name)
            assert sub is not None
            walk(sub, path)

    walk(command, "")
    assert names >= NO_NEW_DATABASE
    assert not {"init", "ingest", "run", "smtp", "imap", "worker", "web"} & NO_NEW_DATABASE
    assert "db upgrade" not in NO_NEW_DATABASE and "tickets create" not in NO_NEW_DATABASE
    conf = write(tmp_path / "mailgate.toml", f'[security]\nsecret = "{SECRET}"\n')
    mail = tmp_path / "in.eml"
    mail.write_bytes(build())
    assert run(tmp_path, "--config", str(conf), "ingest", str(mail)).exit_code == 0
    listed = run(tmp_path, "--config", str(conf), "tickets", "list")
    assert listed.exit_code == 0 and "Printer is broken" in listed.stdout


# -- 3. check-config names every problem in one run -------------------------------------


def test_check_config_reports_every_problem_in_one_run(tmp_path: Path) -> None:
    """A type error in one section no longer hides the others, nor the templates check."""
    conf = write(
        tmp_path / "mailgate.toml",
        f'[security]\nsecret = "{SECRET}"\n'
        '[smtp]\nmax_recipients = "ten"\n'  # a type error ...
        '[queue]\nbroker = "bogus"\n'  # ... and four more, in other sections
        '[intake]\npolicy = "nobody"\n'
        '[web]\nlisten = "x"\n'
        '[outbound]\ntemplates = "nowhere"\n',
    )
    result = run(tmp_path, "--config", str(conf), "check-config")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{conf}: smtp.max_recipients: expected an integer, got 'ten'",
        f"{conf}: queue.broker: expected embedded, redis://... or amqp://..., got 'bogus'",
        f"{conf}: web.listen: expected HOST:PORT such as 127.0.0.1:8080, got 'x'",
        f"{conf}: intake.policy: expected one of anyone, known, admins, got 'nobody'",
        f"{conf}: outbound.templates: {tmp_path / 'nowhere'}: not a folder",
        "5 problem(s) found",
    ]


def test_a_problem_that_follows_from_a_refused_value_is_not_reported_twice(
    tmp_path: Path,
) -> None:
    """A status missing its category is refused once; 'needs a closed status' would only
    repeat it."""
    conf = write(
        tmp_path / "m.toml",
        f'[security]\nsecret = "{SECRET}"\n'
        '[tickets]\nstatuses = [{ name = "New", category = "new" }, '
        '{ name = "Open", category = "active" }, { name = "Closed" }]\n[run]\nmax_deaths = 0\n',
    )
    _, problems = config.inspect(conf, {})
    assert problems == [
        f"{conf}: tickets.statuses[2].category: required, expected a string",
        f"{conf}: run.max_deaths: expected an integer of at least 1",
    ]


# -- 4. web.base_url must reach web.listen ----------------------------------------------


@pytest.mark.parametrize(
    ("listen", "base_url", "outcome"),
    [
        ("127.0.0.1:8080", "http://127.0.0.1:8080", "ok"),
        ("127.0.0.1:8080", "http://localhost:8080/support", "ok"),
        ("127.0.0.1:8080", "https://support.example.com", "ok"),  # a TLS proxy
        ("127.0.0.1:8080", "http://support.example.com", "ok"),  # another host: a proxy
        ("127.0.0.1:9090", None, "ok"),  # base_url left out follows listen
        ("10.0.0.5:8080", "http://10.0.0.5:9090", "warning"),
        ("0.0.0.0:8080", "http://127.0.0.1:9090", "warning"),
        ("127.0.0.1:8080", "http://127.0.0.1:9090", "error"),
        ("[::1]:8080", "http://localhost:8081", "error"),
    ],
)
def test_base_url_that_cannot_reach_listen(
    tmp_path: Path, listen: str, base_url: str | None, outcome: str
) -> None:
    """Same host, other port: one warning line naming both keys; both loopback: an error."""
    base = f'base_url = "{base_url}"\n' if base_url else ""
    conf = write(
        tmp_path / "m.toml", f'[security]\nsecret = "{SECRET}"\n[web]\nlisten = "{listen}"\n{base}'
    )
    result = run(tmp_path, "--config", str(conf), "check-config")
    lines = result.stderr.splitlines()
    if outcome == "ok":
        assert (result.exit_code, lines) == (0, []), result.stderr
        if base_url is None:
            assert config.load(conf, {}).web.base_url == "http://127.0.0.1:9090"
        return
    expected = (
        f"{conf}: web.base_url: {base_url!r} (port {base_url.rsplit(':', 1)[1]}) does not reach "  # type: ignore[union-attr]
        f"web.listen = {listen!r}: notices and sign-in links would point elsewhere "
        "(set web.base_url to the address people reach the portal at)"
    )
    if outcome == "warning":
        assert result.exit_code == 0 and result.stdout == f"{conf}: OK\n"
        assert lines == [f"warning: {expected}"]
    else:
        assert result.exit_code == 2
        assert lines == [expected, "1 problem(s) found"]


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
