"""Shared fixtures: settings, a store on SQLite or PostgreSQL, the CLI, corpus paths."""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result

from mailgate.core.settings import SecuritySettings, Settings
from mailgate.db.store import Store, open_store
from tests import ports
from tests.databases import migrate, pg_schema
from tests.servers import require


def pytest_configure(config: pytest.Config) -> None:
    """The run's id for the ports its processes claim (tests/ports.py), set in the
    controlling process before pytest-xdist starts the workers, which inherit it."""
    if not hasattr(config, "workerinput"):
        os.environ.setdefault(ports.RUN_VARIABLE, uuid.uuid4().hex)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        ports.forget_claims()


CORPUS = Path(__file__).resolve().parent / "data" / "zammad"  # see its SOURCE.md
DATA = Path(__file__).resolve().parent / "data"
SECRET = "test-secret-that-is-long-enough-0123456789"
# The lowest cost argon2-cffi accepts: see _quick_password_hashes.
QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def _cache_bytecode_outside_the_tree() -> None:
    """Where PYTHONDONTWRITEBYTECODE is set (this project's CI machine sets it), keep the
    compiled bytecode in a folder of the suite's own rather than writing none.

    Without it every process compiles every module it imports from source, and pytest
    rewrites every test module's asserts again in each worker: the suite starts a few
    hundred `mailgate` processes, and that was about 40 s of its CPU. The source tree
    stays as clean as the variable asked; subprocesses inherit the same cache.
    """
    if not sys.flags.dont_write_bytecode or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    folder = os.path.join(tempfile.gettempdir(), f"mailgate-test-pycache-{os.getuid()}")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = folder
    sys.dont_write_bytecode = False
    sys.pycache_prefix = folder


_cache_bytecode_outside_the_tree()


def fixed_clock(at: datetime | None = None) -> Callable[[], datetime]:
    moment = at or datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    return lambda: moment


@pytest.fixture(autouse=True, scope="session")
def _quick_password_hashes() -> Iterator[None]:
    """argon2id at its cheapest parameters for in-process tests.

    Hashing is slow on purpose (about 0.1 s of CPU a check at the library's defaults),
    and hundreds of tests sign an agent in: that was a minute of the suite's CPU. The
    hashes stay real argon2id, verified by the same code; only their cost parameters
    differ, and a mailgate run as a subprocess keeps the defaults.
    """
    from mailgate.web import passwords

    saved = passwords._hasher, passwords._DUMMY
    passwords._hasher = QUICK_HASHER
    passwords._DUMMY = QUICK_HASHER.hash("not-a-password-of-anyone")
    assert isinstance(saved[0], PasswordHasher)
    yield
    passwords._hasher, passwords._DUMMY = saved


@pytest.fixture
def now() -> Callable[[], datetime]:
    return fixed_clock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a throwaway schema in PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mailgate.db'}"
        return
    yield from _pg_schema()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_schema()


def _pg_schema() -> Iterator[str]:
    require("PostgreSQL", "127.0.0.1", 5432)
    yield from pg_schema()


def make_settings(db_url: str, **sections: Any) -> Settings:
    """Built-in defaults with a test database and secret; ``sections`` replace whole sections."""
    base = Settings(security=SecuritySettings(secret=SECRET))
    base = dataclasses.replace(base, database=dataclasses.replace(base.database, url=db_url))
    return dataclasses.replace(base, **sections)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """A migrated store; PostgreSQL is migrated explicitly, as `mailgate db upgrade` does."""
    migrate(settings.database.url)
    s = open_store(settings)
    yield s
    s.engine.dispose()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run ``mailgate`` in-process against a config file in ``tmp_path``."""
    from mailgate.cli import cli as command

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "mailgate.toml"
    if not config.exists():
        config.write_text(
            f'[database]\nurl = "sqlite:///{tmp_path / "mailgate.db"}"\n'
            f'[security]\nsecret = "{SECRET}"\n'
        )

    def run(*args: str, input: bytes | str | None = None) -> Result:
        return CliRunner().invoke(command, ["--config", str(config), *args], input=input)

    return run


@pytest.fixture
def dovecot() -> Iterator[Any]:
    """A running throwaway Dovecot (see tests/dovecot.py) with user ``support``."""
    from tests.dovecot import Dovecot

    server = Dovecot()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mailgate.db'}"


@pytest.fixture
def stores() -> Iterator[Callable[[Settings], Store]]:
    """Open a migrated store for settings made in the test; disposed afterwards."""
    opened: list[Store] = []

    def make(settings: Settings) -> Store:
        migrate(settings.database.url)  # PostgreSQL is never migrated implicitly
        opened.append(open_store(settings))
        return opened[-1]

    yield make
    for store in opened:
        store.engine.dispose()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Any]:
    """The portal on a fresh SQLite file (tests/web_support.Site); some web tests override it."""
    from tests.web_support import make_site

    s = make_site(f"sqlite:///{tmp_path / 'mailgate.db'}")
    yield s
    s.store.engine.dispose()
