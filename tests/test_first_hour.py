"""Issue 25, "the first hour": what a new user met, through the real CLI on real SQLite files.

Relative paths follow the config file; read-only commands never create an empty database;
check-config names every problem at once and checks web.base_url against web.listen. The
rest of that hour is in tests/test_first_hour_output.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from mailgate.cli import cli as command
from mailgate.cli.context import NO_NEW_DATABASE
from mailgate.core import config
from mailgate.core.settings import Settings
from tests.builders import build
from tests.conftest import SECRET
from tests.first_hour_support import run, write

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
