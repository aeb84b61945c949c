"""Writers of one SQLite file take turns, and the next one goes as soon as a turn ends.

SQLite lets one connection write at a time. A connection that finds the write lock held
sleeps and tries again, in growing steps (1, 2, 5, 10 … up to 100 ms: sqlite3's busy
handler, which Python's sqlite3 does not let us replace). Beside a writer that starts
its next transaction at once, as a worker with a backlog does, a waiting writer seldom
finds the lock free when it wakes: `mailgate run`'s receiver acknowledged mail at 0.28 x
a bare aiosmtpd handler while its worker had work, against 0.50 x alone
(benchmarks/smtp_accept.py), each acknowledgement waiting out the worker's next message.

So a connection first takes the file's turn: an exclusive ``flock`` on
``<database>-turn``, asked again every millisecond at most while another connection of
any process holds it; it gives the turn back the moment its transaction ends (commit,
rollback, close). A waiter then goes next within a millisecond, and the two take turns.

The turn only orders the waiting. SQLite's lock still decides who writes, and a writer
that does not use turns (the ``sqlite3`` shell, an older mailgate) is waited for by
SQLite as before. A turn not had within the busy timeout is given up on, and the
transaction goes on without one, SQLite's own wait set to nil since the timeout is
spent: a stuck holder costs no more than before.

Background writers (the worker, which processes what the receivers stored) let the
others go first. Taking turns one for one still made each acknowledgement wait out one
of the worker's transactions: beside a worker with a backlog, `mailgate run`
acknowledged 16 clients at 0.23 x a bare handler, against 0.41 x for the receiver alone.
So every other writer, from the moment it wants a turn until its turn ends, holds a
shared ``flock`` on ``<database>-turn-wanted``; a background writer asks for its turn
only once nobody holds that file (it tries an exclusive lock and lets go at once), and
waits so for at most BACKGROUND_WAITS_MOST seconds: a flood of mail slows processing
down but cannot stop it. A receiver that is idle, as at 20 messages/s, never holds the
worker back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Any

# Statements that begin a write transaction, or write outside one (pysqlite begins a
# transaction before INSERT, UPDATE, DELETE and REPLACE; BEGIN and DDL may come as text).
_WRITES = re.compile(
    r"^\s*(?:INSERT|UPDATE|DELETE|REPLACE|BEGIN|CREATE|DROP|ALTER|VACUUM|REINDEX)\b"
    r"|^\s*WITH\b.*\b(?:INSERT|UPDATE|DELETE|REPLACE)\b",
    re.IGNORECASE | re.DOTALL,
)
# How often a waiter asks again, at most: the longest a turn stays unused once it ends.
_LONGEST_POLL_SECONDS = 0.001
# The longest a background writer lets the others go first before it takes its turn.
BACKGROUND_WAITS_MOST = 0.25
# The longest a writer asks for its claim to go first before it goes on without one.
_WANTED_WAIT_SECONDS = 0.001


def is_write(statement: str) -> bool:
    """Whether ``statement`` may take SQLite's write lock."""
    return _WRITES.match(statement) is not None


def connection_class(wait_seconds: float, *, background: bool = False) -> type[sqlite3.Connection]:
    """A ``sqlite3.connect(factory=…)`` class whose connections take turns to write,
    waiting at most ``wait_seconds`` for one; ``background`` ones let the others go first."""
    attributes = {"wait_seconds": wait_seconds, "background": background}
    return type("TurnTakingConnection", (TurnTakingConnection,), attributes)


class TurnTakingConnection(sqlite3.Connection):
    """A sqlite3 connection that holds its file's turn while it writes (module docstring)."""

    wait_seconds = 30.0
    background = False

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        name = os.fsdecode(database) if isinstance(database, str | bytes | os.PathLike) else ""
        # One file per database; none for memory databases or URIs (no file of ours).
        self._turn_path = (
            ""
            if not name or name == ":memory:" or kwargs.get("uri") or name.startswith("file:")
            else name + "-turn"
        )
        self._turn_fd: int | None = None
        # Held by a writer that is not in the background from wanting a turn to its end.
        self._precedence = Precedence(name) if self._turn_path else None
        # This transaction went on without a turn (none to be had in time): its later
        # writes go on without one too, rather than each waiting as long again.
        self._without_turn = False
        self._waited_out = False  # and SQLite's own wait was set to nil for it

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or _TurnTakingCursor)

    def commit(self) -> None:
        self._then_end_turn(super().commit)

    def rollback(self) -> None:
        self._then_end_turn(super().rollback)

    def close(self) -> None:
        self._then_end_turn(super().close)

    def _then_end_turn(self, ending: Callable[[], None]) -> None:
        """``ending`` (commit, rollback, close), then give the turn back, failed or not."""
        try:
            ending()
        finally:
            self._end_turn()

    def take_turn(self) -> None:
        """Hold the file's turn, waiting for it at most ``wait_seconds``; no-op if held."""
        if self._turn_fd is not None or self._without_turn or not self._turn_path:
            return
        fd = _open_turn_file(self._turn_path)
        if fd is None:
            self._without_turn = True  # no turns to be had here: SQLite's own wait alone
            return
        if self.background:
            _let_the_others_go_first(self._turn_path + "-wanted")
        elif self._precedence is not None:
            self._precedence.hold()
        had = _lock_within(fd, fcntl.LOCK_EX, self.wait_seconds)
        if had:
            self._turn_fd = fd
            return
        os.close(fd)
        if had is None:
            self._without_turn = True  # a file system without flock: SQLite's wait alone
        else:
            self._spent_the_wait()  # go on without it: SQLite's own lock still decides

    def _spent_the_wait(self) -> None:
        """Go on without a turn, having waited the whole busy timeout for one: SQLite is
        not to wait as long again (``database.sqlite_busy_timeout_ms`` bounds the wait
        for a lock, turn and all), so its wait is nil until the transaction ends."""
        self.execute("PRAGMA busy_timeout = 0")  # first: no transaction is open to end yet
        self._without_turn = self._waited_out = True

    def _end_turn(self) -> None:
        self._without_turn = False
        if self._waited_out:
            self._waited_out = False
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed: nothing to restore
                self.execute(f"PRAGMA busy_timeout = {round(self.wait_seconds * 1000)}")
        fd, self._turn_fd = self._turn_fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock
        if self._precedence is not None:
            self._precedence.release()

    def end_turn_unless_writing(self) -> None:
        """Give the turn back when no transaction is open (a statement ended one)."""
        wants = self._precedence is not None and self._precedence.held
        holds = self._turn_fd is not None or wants or self._without_turn
        if holds and not self.in_transaction:
            self._end_turn()


class Precedence:
    """A claim, across processes, to write before background writers: held by every
    other writer from wanting a turn to its end, and by a receiver while it has messages
    in hand, so that its next commit does not wait out one of the worker's transactions
    begun in the moment between two of its own."""

    def __init__(self, database: str) -> None:
        self._path = database + "-turn-wanted"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def hold(self) -> None:
        """Hold the claim (no-op if held); a write is never stopped for want of it."""
        if self._fd is None:
            self._fd = _say_wanted(self._path)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _say_wanted(path: str) -> int | None:
    """A shared lock on ``path`` (the -turn-wanted file), held until the turn ends: a
    background writer waits while anyone holds one; None when it cannot be had."""
    fd = _open_turn_file(path)
    if fd is None:
        return None
    # Only ever held exclusively for a moment, by a background writer that looks: asked
    # for a millisecond, never waited on (a writer stopped mid-look must not stop this one).
    if _lock_within(fd, fcntl.LOCK_SH, _WANTED_WAIT_SECONDS):
        return fd
    os.close(fd)
    return None


def _let_the_others_go_first(path: str) -> None:
    """Wait, at most BACKGROUND_WAITS_MOST seconds, until no writer but background ones
    wants a turn (nobody holds a shared lock on ``path``)."""
    fd = _open_turn_file(path)
    if fd is not None:
        # Had (nobody wants it), not had in time, or no flock here: the same, go on.
        # Closing the file lets go of the exclusive lock at once.
        _lock_within(fd, fcntl.LOCK_EX, BACKGROUND_WAITS_MOST)
        os.close(fd)


def _lock_within(fd: int, operation: int, seconds: float) -> bool | None:
    """Ask for ``operation`` (LOCK_EX or LOCK_SH) on ``fd`` again and again, in pauses
    growing to _LONGEST_POLL_SECONDS, until it is had (True) or ``seconds`` have passed
    (False); None on a file system without flock."""
    deadline = time.monotonic() + seconds
    pause = 0.00005
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_POLL_SECONDS)
        except OSError:
            return None


def _open_turn_file(path: str) -> int | None:
    """The turn file (or the -turn-wanted file), made beside the database when missing;
    None when it cannot be opened (say, made by another user), which must not stop a write.

    Made with the database file's mode and, by root, given to the database's owner, as
    SQLite does with its -wal and -shm files: `sudo mailgate …` once must not leave a
    file the service's own user cannot open."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        try:
            database = os.stat(path.removesuffix("-wanted").removesuffix("-turn"))
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, database.st_mode & 0o666)
        except OSError:
            return None
        if os.geteuid() == 0:
            with contextlib.suppress(OSError):
                os.fchown(fd, database.st_uid, database.st_gid)
    except OSError:
        return None
    return fd


class _TurnTakingCursor(sqlite3.Cursor):
    connection: TurnTakingConnection

    def execute(self, sql: str, parameters: Any = (), /) -> _TurnTakingCursor:
        return self._in_turn(is_write(sql), super().execute, sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> _TurnTakingCursor:
        return self._in_turn(is_write(sql), super().executemany, sql, seq_of_parameters)

    def executescript(self, sql_script: str, /) -> _TurnTakingCursor:
        return self._in_turn(True, super().executescript, sql_script)

    def _in_turn(self, writes: bool, run: Callable[..., object], *args: Any) -> _TurnTakingCursor:
        """``run(*args)``, holding the file's turn first when it ``writes``; the turn is
        given back as soon as no transaction is open, whether ``run`` failed or not."""
        if writes:
            self.connection.take_turn()
        try:
            run(*args)
        finally:
            self.connection.end_turn_unless_writing()
        return self
