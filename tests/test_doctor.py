"""`mailgate doctor` as a real process: a working setup passes, each broken piece is one FAIL line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SECRET
from tests.smarthost import Smarthost, free_port, running

REPO = Path(__file__).resolve().parents[1]


def mailgate(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        cwd=config.parent,
        timeout=120,
    )


def write_config(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
        f'[security]\nsecret = "{SECRET}"\n{extra}'
    )
    return path


def lines(out: str) -> dict[str, str]:
    """``{check name: whole line}``; a name seen twice keeps its first FAIL."""
    found: dict[str, str] = {}
    for line in out.splitlines():
        name = line[6:].split(":", 1)[0]
        if name not in found or line.startswith("FAIL"):
            found[name] = line
    return found


def test_working_setup_passes_every_check(tmp_path: Path) -> None:
    """SQLite migrated, embedded broker, file transport: every line ok and exit 0."""
    config = write_config(tmp_path, f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n')
    assert mailgate(config, "db", "upgrade").returncode == 0
    result = mailgate(config, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result.stdout)
    assert set(found) == {
        "config",
        "secret",
        "database",
        "migrations",
        "broker",
        "outbound",
        "templates",
    }
    assert all(line.startswith("ok  ") for line in found.values()), result.stdout
    assert "(current)" in found["migrations"]


def test_smarthost_that_answers_ehlo_passes(tmp_path: Path) -> None:
    """With transport smtp, a smarthost that answers EHLO is ok; the secret is never printed."""
    with running(Smarthost()) as port:
        config = write_config(
            tmp_path,
            '[outbound]\ntransport = "smtp"\n'
            f'[outbound.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n',
        )
        assert mailgate(config, "db", "upgrade").returncode == 0
        result = mailgate(config, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines(result.stdout)["outbound"] == (
        f"ok    outbound: smarthost 127.0.0.1:{port} (none) answers EHLO"
    )
    assert SECRET not in result.stdout + result.stderr


def test_broken_setup_names_each_failure_and_exits_1(tmp_path: Path) -> None:
    """Closed smarthost port, secret emptied by env, IMAP on a closed port: FAIL each."""
    smtp_port, imap_port = free_port(), free_port()
    config = write_config(
        tmp_path,
        '[outbound]\ntransport = "smtp"\n'
        f'[outbound.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        '[[imap.mailboxes]]\nname = "support"\nhost = "127.0.0.1"\n'
        f'port = {imap_port}\nsecurity = "none"\nusername = "support"\npassword = "pw"\n',
    )
    result = mailgate(config, "doctor", MAILGATE_SECURITY_SECRET="")
    assert result.returncode == 1, result.stdout + result.stderr
    found = lines(result.stdout)
    assert found["secret"].startswith("FAIL  secret: security.secret: required")
    assert found["imap support"].startswith(
        f"FAIL  imap support: mailbox support: 127.0.0.1:{imap_port}: cannot connect"
    )
    assert found["outbound"].startswith(f"FAIL  outbound: smarthost 127.0.0.1:{smtp_port}")
    assert "refused" in found["outbound"].lower()
    for healthy in ("config", "database", "migrations", "broker", "templates"):
        assert found[healthy].startswith("ok  "), result.stdout
    assert result.stderr.strip() == "mailgate doctor: 3 check(s) failed"


def test_unreachable_redis_broker_fails(tmp_path: Path) -> None:
    """A redis:// broker on a closed port is a FAIL line naming it."""
    port = free_port()
    config = write_config(tmp_path, f'[queue]\nbroker = "redis://127.0.0.1:{port}/0"\n')
    result = mailgate(config, "doctor")
    assert result.returncode == 1
    assert lines(result.stdout)["broker"].startswith(
        f"FAIL  broker: redis://127.0.0.1:{port}/0: cannot connect"
    )


def test_fresh_install_passes_and_creates_nothing(tmp_path: Path) -> None:
    """After `mailgate init`, before anything ran: every check ok (SQLite is migrated on
    first use), and doctor itself makes no database file (issue 25)."""
    init = subprocess.run(
        [sys.executable, "-m", "mailgate", "init"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    result = mailgate(tmp_path / "mailgate.toml", "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result.stdout)
    assert all(line.startswith("ok  ") for line in found.values()), result.stdout
    assert found["database"] == (
        f"ok    database: {tmp_path / 'mailgate.db'} does not exist yet; created on first use"
    )
    assert found["migrations"] == "ok    migrations: none yet; SQLite is migrated on first use"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mailgate.toml"]


def test_unmigrated_sqlite_is_ok_because_it_migrates_on_first_use(tmp_path: Path) -> None:
    """A SQLite file without tables, or at an older revision, is ok; it is not touched."""
    from mailgate.db.store import Store

    config = write_config(tmp_path, "")
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    with store.engine.connect():
        pass  # an empty file
    result = mailgate(config, "doctor")
    assert lines(result.stdout)["migrations"] == (
        "ok    migrations: none yet; SQLite is migrated on first use"
    )
    store.upgrade("0007_responses")
    result = mailgate(config, "doctor")
    assert result.returncode == 0, result.stdout
    assert lines(result.stdout)["migrations"] == (
        "ok    migrations: at 0007_responses; SQLite is migrated on first use "
        f"(to {store.head_revision()})"
    )
    assert store.current_revision() == "0007_responses"
    store.engine.dispose()


@pytest.mark.postgres
def test_unmigrated_postgresql_still_fails(tmp_path: Path, pg_url: str) -> None:
    """PostgreSQL is never migrated implicitly: an empty schema is a FAIL naming the fix."""
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[database]\nurl = "{pg_url}"\n[security]\nsecret = "{SECRET}"\n')
    result = mailgate(config, "doctor")
    assert result.returncode == 1
    assert lines(result.stdout)["migrations"].startswith("FAIL  migrations: schema at none")
    assert "run `mailgate db upgrade`" in lines(result.stdout)["migrations"]
