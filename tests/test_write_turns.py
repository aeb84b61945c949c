"""SQLite writers take turns (mailgate/db/write_turns.py): a connection holds its file's
turn exactly while it writes, a waiting writer goes once the turn is given back, and a
turn held too long is given up on, leaving the wait to SQLite as before."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from mailgate.db import write_turns
from mailgate.db.store import Store
from mailgate.db.write_turns import is_write
from tests.file_locks import held_by_anyone


@contextmanager
def _opened(database: Path, *, busy_timeout_ms: int = 30_000) -> Iterator[Store]:
    opened = Store(f"sqlite:///{database}", sqlite_busy_timeout_ms=busy_timeout_ms)
    try:
        yield opened
    finally:
        opened.engine.dispose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with _opened(tmp_path / "turns.db") as opened:
        with opened.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        yield opened


def _write_then_read(store: Store, value: str) -> str:
    """Make table t, store ``value`` in it in one transaction, and read it back."""
    with store.transaction() as session:
        session.execute(text("CREATE TABLE t (v TEXT)"))
        session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
    with store.transaction() as session:
        return str(session.execute(text("SELECT v FROM t")).scalar_one())


def _turn_file(store: Store) -> str:
    return store.url.removeprefix("sqlite:///") + "-turn"


def _turn_is_free(store: Store) -> bool:
    """Whether nobody holds the file's turn."""
    return not held_by_anyone(_turn_file(store))


@contextmanager
def _held_turn(store: Store) -> Iterator[None]:
    """The turn held by another open file, as another process would hold it."""
    fd = os.open(_turn_file(store), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("statement", "writes"),
    [
        ("INSERT INTO t (v) VALUES ('a')", True),
        ("  update t SET v = 'b'", True),
        ("DELETE FROM t", True),
        ("REPLACE INTO t (id, v) VALUES (1, 'c')", True),
        ("BEGIN IMMEDIATE", True),
        ("CREATE INDEX ix ON t (v)", True),
        ("WITH n AS (SELECT 1) INSERT INTO t (v) SELECT 'd' FROM n", True),
        ("SELECT * FROM t", False),
        ("WITH n AS (SELECT 1) SELECT * FROM n", False),
        ("PRAGMA journal_mode", False),
        ("SELECT 'INSERT INTO t'", False),
    ],
)
def test_which_statements_take_a_turn(statement: str, writes: bool) -> None:
    assert is_write(statement) is writes


def test_the_turn_is_held_from_the_first_write_to_the_commit(store: Store) -> None:
    with store.transaction() as session:
        session.execute(text("SELECT count(*) FROM t")).scalar_one()
        assert _turn_is_free(store), "a read takes no turn"
        session.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert not _turn_is_free(store), "a write holds the turn until its transaction ends"
    assert _turn_is_free(store)


def test_a_rollback_and_a_failed_write_give_the_turn_back(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as session:
        session.execute(text("INSERT INTO t (v) VALUES ('a')"))
        raise RuntimeError("the caller fails half-way")
    assert _turn_is_free(store)
    with store.engine.connect() as conn:
        with pytest.raises(Exception, match="no such table"):
            conn.execute(text("INSERT INTO missing (v) VALUES ('a')"))
        assert _turn_is_free(store), "a write that could not begin holds no turn"
    assert _turn_is_free(store)
    with store.transaction() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 0


def test_a_writer_waits_for_the_turn_and_goes_once_it_is_given_back(store: Store) -> None:
    wrote = threading.Event()

    def write() -> None:
        with store.transaction() as session:
            session.execute(text("INSERT INTO t (v) VALUES ('waited')"))
        wrote.set()

    with _held_turn(store):
        writer = threading.Thread(target=write)
        writer.start()
        # SQLite's own lock is free: only the turn holds the writer back.
        assert not wrote.wait(0.5), "the write went ahead while another held the turn"
    assert wrote.wait(10), "the write did not go once the turn was given back"
    writer.join()
    with store.transaction() as session:
        assert session.execute(text("SELECT v FROM t")).scalars().all() == ["waited"]


def test_a_turn_held_past_the_busy_timeout_is_given_up_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write goes on without it, and the transaction's later writes do not wait
    for a turn again."""
    asked: list[str] = []
    open_turn_file = write_turns._open_turn_file

    def counted(path: str) -> int | None:
        asked.append(path)
        return open_turn_file(path)

    monkeypatch.setattr(write_turns, "_open_turn_file", counted)
    with _opened(tmp_path / "quick.db", busy_timeout_ms=200) as quick:
        assert _write_then_read(quick, "before") == "before"
        asked.clear()
        # The holder never gives it back; SQLite's lock is free, so the writes go.
        with _held_turn(quick), quick.transaction() as session:
            session.execute(text("INSERT INTO t (v) VALUES ('anyway')"))
            # The busy timeout was spent on the turn: SQLite is not to wait as long again.
            assert session.execute(text("PRAGMA busy_timeout")).scalar_one() == 0
            session.execute(text("INSERT INTO t (v) VALUES ('and again')"))
        with quick.transaction() as session:
            assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 3
            assert session.execute(text("PRAGMA busy_timeout")).scalar_one() == 200
    turns = [path for path in asked if path.endswith("-turn")]
    assert len(turns) == 1, "the second write of the transaction waited for a turn again"


def test_writers_in_many_threads_each_write_once(store: Store) -> None:
    """Many connections of one process taking turns: nothing lost, nothing stuck."""

    def write(n: int) -> None:
        for i in range(20):
            with store.transaction() as session:
                session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"{n}-{i}"})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    with store.transaction() as session:
        assert session.execute(text("SELECT count(DISTINCT v) FROM t")).scalar_one() == 120
    assert _turn_is_free(store)


def _background_write(database: Path, done: threading.Event) -> threading.Thread:
    """A thread writing once through a background store (the worker's) of ``database``."""

    def write() -> None:
        background = Store(f"sqlite:///{database}", background=True)
        try:
            with background.transaction() as session:
                session.execute(text("INSERT INTO t (v) VALUES ('background')"))
            done.set()
        finally:
            background.engine.dispose()

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_a_background_writer_waits_while_a_receiver_holds_precedence(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's write waits for a receiver with messages in hand, and goes as soon
    as the receiver lets go; SQLite's lock and the turn are free all along."""
    monkeypatch.setattr(write_turns, "BACKGROUND_WAITS_MOST", 30.0)
    database = Path(store.url.removeprefix("sqlite:///"))
    precedence = store.precedence()
    assert precedence is not None
    precedence.hold()
    done = threading.Event()
    try:
        writer = _background_write(database, done)
        assert not done.wait(0.5), "the background write went first"
        assert _turn_is_free(store)
    finally:
        precedence.release()
    assert done.wait(10), "the background write did not go once precedence was let go"
    writer.join()
    assert not precedence.held


def test_a_background_writer_waits_for_precedence_a_bounded_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver that never lets go (a flood of mail) slows the worker, never stops it."""
    monkeypatch.setattr(write_turns, "BACKGROUND_WAITS_MOST", 0.3)
    precedence = store.precedence()
    assert precedence is not None
    precedence.hold()
    done = threading.Event()
    try:
        started = time.monotonic()
        writer = _background_write(Path(store.url.removeprefix("sqlite:///")), done)
        assert done.wait(10), "the background write waited past its bound"
        assert time.monotonic() - started >= 0.3
        writer.join()
    finally:
        precedence.release()


def test_other_writers_go_first_only_while_they_want_a_turn(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A foreground writer says so from its first write to its commit, and only then: a
    background writer beside an idle one goes at once (it would wait 30 s, not 10)."""
    monkeypatch.setattr(write_turns, "BACKGROUND_WAITS_MOST", 30.0)
    wanted = _turn_file(store) + "-wanted"

    def someone_wants() -> bool:
        return held_by_anyone(wanted)

    with store.transaction() as session:
        session.execute(text("SELECT count(*) FROM t")).scalar_one()
        assert not someone_wants(), "a read wants no turn"
        session.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert someone_wants()
    assert not someone_wants()
    done = threading.Event()
    writer = _background_write(Path(store.url.removeprefix("sqlite:///")), done)
    assert done.wait(10), "the background write waited with nobody wanting a turn"
    writer.join()


def test_the_turn_file_takes_the_database_files_mode_and_owner(tmp_path: Path) -> None:
    """Made as SQLite makes its -wal: with the database's mode, and by root given to
    the database's owner, so one `sudo mailgate …` leaves nothing the service cannot open."""
    database = tmp_path / "owned.db"
    sqlite3.connect(database).close()
    database.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(database, 65534, 65534)
    with _opened(database) as owned:
        with owned.transaction() as session:
            session.execute(text("CREATE TABLE t (v TEXT)"))
        turn = os.stat(f"{database}-turn")
        assert turn.st_mode & 0o777 == 0o640 & ~_umask()
        if os.geteuid() == 0:
            assert (turn.st_uid, turn.st_gid) == (65534, 65534)


def test_a_turn_file_that_cannot_be_opened_stops_no_write(tmp_path: Path) -> None:
    (tmp_path / "blocked.db-turn").mkdir()  # opened for writing, a directory fails
    with _opened(tmp_path / "blocked.db") as blocked:
        assert _write_then_read(blocked, "written") == "written"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
