"""The whole pipeline with real workers: SQLite with the embedded queue, PostgreSQL with
Redis and with RabbitMQ; crash and shutdown behaviour; round robin under concurrency."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailgate.core import config
from mailgate.core.settings import Settings
from mailgate.db.store import Store
from mailgate.inbound.intake import Envelope, accept
from mailgate.jobs import enqueue_inbound
from mailgate.jobs.broker import forget_brokers
from tests.conftest import _pg_schema
from tests.faults.processes import alive, children_of
from tests.servers import require
from tests.worker_support import (
    cure,
    mail,
    mailgate,
    poison,
    ready_store,
    scalar,
    spawn_mailgate,
    unique_queue_name,
    wait_for,
    write_config,
)

REDIS = "redis://127.0.0.1:6379/0"
RABBIT = "amqp://guest:guest@127.0.0.1:5672/%2F"
DIRECTORY = """
[intake]
policy = "known"
[[teams]]
name = "support"
assignment = "round_robin"
[[agents]]
email = "ann@example.com"
teams = ["support"]
[[agents]]
email = "bob@example.com"
teams = ["support"]
[[customers]]
name = "Acme"
domains = ["acme.test"]
[[rules]]
name = "outages"
when = { subject = "(?i)outage" }
set = { type = "Technical", priority = "Urgent", tags = ["outage"] }
"""


def _utc() -> datetime:
    return datetime.now(UTC)


@dataclass
class Install:
    """A configured mailgate: its config file, settings and store, as intake sees them."""

    config: Path
    settings: Settings
    store: Store

    def receive(self, raw: bytes, *, enqueue: bool = True) -> int:
        """What a receiver does: commit the raw bytes, then enqueue the id."""
        inbound_id = accept(
            self.store, raw, source="smtp", envelope=Envelope(), max_bytes=10**7, now=_utc
        ).inbound_id
        if enqueue:
            enqueue_inbound(self.settings, inbound_id)
        return inbound_id

    def outcomes(self) -> dict[int, tuple[str, str]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, state, outcome FROM inbound_messages"))
            return {i: (state, outcome) for i, state, outcome in rows}

    def assignees(self) -> dict[str, int]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT a.email, count(*) FROM tickets t JOIN agents a ON a.id = t.assignee_id "
                    "GROUP BY a.email"
                )
            )
            return dict(rows.all())


def _purge_redis(name: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(f"dramatiq:*{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _purge_rabbitmq(name: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(RABBIT))
    channel = connection.channel()
    for queue in ("inbound", "notices"):
        for suffix in ("", ".DQ", ".XQ"):
            channel.queue_delete(f"{name}-{queue}{suffix}")
    connection.close()


def _broker_url(kind: str) -> str:
    if kind == "redis":
        require("Redis", "127.0.0.1", 6379)
        return REDIS
    require("RabbitMQ", "127.0.0.1", 5672)
    return RABBIT


@pytest.fixture
def make_install(tmp_path: Path) -> Iterator[Callable[..., Install]]:
    """Build installs: ``kind`` is sqlite (embedded queue), redis or rabbitmq (PostgreSQL)."""
    cleanups: list[Callable[[], None]] = []

    def build(kind: str, *, queue: str = "", text: str = DIRECTORY) -> Install:
        name = unique_queue_name()
        if kind == "sqlite":
            db_url, broker = f"sqlite:///{tmp_path / 'mailgate.db'}", "embedded"
        else:
            broker = _broker_url(kind)
            schema = _pg_schema()
            db_url = next(schema)
            cleanups.append(lambda: next(schema, None))
            purge = _purge_redis if kind == "redis" else _purge_rabbitmq
            cleanups.append(lambda: purge(name))
        path = write_config(
            tmp_path / "mailgate.toml",
            db_url,
            broker=broker,
            queue_name=name,
            queue=queue,
            text=text,
        )
        settings = config.load(path, {})
        store = ready_store(settings)
        cleanups.append(store.engine.dispose)
        return Install(path, settings, store)

    yield build
    forget_brokers()
    for cleanup in reversed(cleanups):
        cleanup()


def _burst(install: Install, *args: str) -> None:
    done = mailgate(install.config, "worker", "--burst", *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
        pytest.param("rabbitmq", marks=[pytest.mark.postgres, pytest.mark.rabbitmq]),
    ],
)
def test_pipeline_end_to_end(make_install: Callable[..., Install], kind: str) -> None:
    """Stored mail becomes tickets, a refusal notice row and a threaded reply via `worker --burst`."""
    mg = make_install(kind)
    outage = mg.receive(mail(sender="jo@acme.test", subject="Outage!", message_id="o@acme.test"))
    question = mg.receive(mail(sender="kim@acme.test", subject="A question"))
    stranger = mg.receive(mail(sender="x@nowhere.test", subject="Let me in"))
    _burst(mg, "--processes", "2", "--threads", "2")
    reply = mg.receive(
        mail(sender="jo@acme.test", subject="Re: Outage!", headers=["In-Reply-To: <o@acme.test>"])
    )
    _burst(mg)
    assert mg.outcomes() == {
        outage: ("processed", "new_ticket"),
        question: ("processed", "new_ticket"),
        stranger: ("processed", "refused_policy"),
        reply: ("processed", "reply"),
    }
    assert mg.assignees() == {"ann@example.com": 1, "bob@example.com": 1}
    assert scalar(mg.store, "SELECT priority FROM tickets WHERE subject = 'Outage!'") == "Urgent"
    assert scalar(mg.store, "SELECT count(*) FROM ticket_messages") == 3
    assert (
        scalar(
            mg.store,
            "SELECT recipient FROM notices WHERE kind = 'intake_refused' AND inbound_id = :i",
            i=stranger,
        )
        == "x@nowhere.test"
    )


@pytest.mark.postgres
@pytest.mark.redis
def test_round_robin_two_processes_exactly_even(make_install: Callable[..., Install]) -> None:
    """Two worker processes assign 200 new tickets to 4 agents: exactly 50 each."""
    agents = "".join(
        f'[[agents]]\nemail = "a{i}@example.com"\nteams = ["support"]\n' for i in range(4)
    )
    mg = make_install(
        "redis", text='[[teams]]\nname = "support"\nassignment = "round_robin"\n' + agents
    )
    ids = [mg.receive(mail(sender=f"c{i}@acme.test", subject=f"q{i}")) for i in range(200)]
    _burst(mg, "--processes", "2", "--threads", "4")
    assert set(mg.outcomes().values()) == {("processed", "new_ticket")}
    assert len(ids) == 200
    assert mg.assignees() == {f"a{i}@example.com": 50 for i in range(4)}


@dataclass
class RowLock:
    """Holds one inbound row's lock, so a worker processing it blocks mid-message."""

    conn: sa.Connection
    pid: int

    def someone_waits(self, store: Store) -> bool:
        """True once another session is blocked by this lock (the worker, mid-message)."""
        waiting = scalar(
            store,
            "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))",
            pid=self.pid,
        )
        return bool(waiting)

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def _lock_row(store: Store, inbound_id: int) -> RowLock:
    conn = store.engine.connect()
    pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    conn.execute(
        sa.text("SELECT id FROM inbound_messages WHERE id = :i FOR UPDATE"), {"i": inbound_id}
    )
    return RowLock(conn, pid)


@pytest.mark.postgres
@pytest.mark.redis
def test_worker_killed_mid_message_ends_in_exactly_one_outcome(
    make_install: Callable[..., Install],
) -> None:
    """SIGKILL while a message is in hand; after restart it is processed exactly once."""
    mg = make_install("redis", queue="reconcile_after_seconds = 1")
    inbound_id = mg.receive(mail(sender="jo@acme.test"))
    lock = _lock_row(mg.store, inbound_id)
    worker = spawn_mailgate(mg.config, "worker")
    try:
        wait_for(lambda: lock.someone_waits(mg.store), what="worker to block on the row")
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        lock.release()
        worker.communicate(timeout=10)
    assert mg.outcomes() == {inbound_id: ("received", "")}
    _burst(mg)
    assert mg.outcomes() == {inbound_id: ("processed", "new_ticket")}
    assert scalar(mg.store, "SELECT count(*) FROM ticket_messages") == 1
    assert scalar(mg.store, "SELECT count(*) FROM tickets") == 1
    assert scalar(mg.store, "SELECT attempts FROM inbound_messages") == 1


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_sigterm_finishes_the_message_in_hand(make_install: Callable[..., Install]) -> None:
    """SIGTERM during a message: the worker finishes it, then exits 0."""
    mg = make_install("rabbitmq")
    inbound_id = mg.receive(mail(sender="jo@acme.test"))
    lock = _lock_row(mg.store, inbound_id)
    worker = spawn_mailgate(mg.config, "worker")
    try:
        wait_for(lambda: lock.someone_waits(mg.store), what="worker to block on the row")
        worker.send_signal(signal.SIGTERM)
    finally:
        lock.release()
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert mg.outcomes() == {inbound_id: ("processed", "new_ticket")}


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_reconciler_recovers_a_lost_broker_message(make_install: Callable[..., Install]) -> None:
    """A running worker's reconciler processes a message whose broker message was lost."""
    mg = make_install("rabbitmq", queue="reconcile_after_seconds = 1")
    inbound_id = mg.receive(mail(sender="jo@acme.test"), enqueue=False)
    worker = spawn_mailgate(mg.config, "worker", "--threads", "1")
    try:
        wait_for(lambda: mg.outcomes()[inbound_id][0] == "processed", what="reconciler")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert mg.outcomes() == {inbound_id: ("processed", "new_ticket")}


@pytest.mark.postgres
@pytest.mark.redis
def test_failures_retry_with_backoff_then_fail_and_retry_from_cli(
    make_install: Callable[..., Install],
) -> None:
    """A running worker retries with backoff, marks failed at max_attempts; `inbound retry` fixes it."""
    mg = make_install(
        "redis", queue="max_attempts = 3\nretry_base_seconds = 1\nretry_max_seconds = 2"
    )
    poison(mg.store)
    inbound_id = mg.receive(mail(sender="jo@acme.test", subject="poison"))
    worker = spawn_mailgate(mg.config, "worker", "--threads", "2")
    try:
        wait_for(lambda: mg.outcomes()[inbound_id][0] == "failed", what="failed state")
        assert scalar(mg.store, "SELECT attempts FROM inbound_messages") == 3
        assert "poisoned" in str(scalar(mg.store, "SELECT last_error FROM inbound_messages"))
        cure(mg.store)
        done = mailgate(mg.config, "inbound", "retry", str(inbound_id))
        assert done.returncode == 0 and "queued" in done.stdout, done.stderr
        wait_for(lambda: mg.outcomes()[inbound_id][0] == "processed", what="retried message")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert mg.outcomes() == {inbound_id: ("processed", "new_ticket")}


def test_embedded_worker_is_killed_and_restarted(make_install: Callable[..., Install]) -> None:
    """A running embedded worker processes stored mail; after SIGKILL a restart finds the rest."""
    mg = make_install("sqlite")
    first = mg.receive(mail(sender="jo@acme.test"))
    worker = spawn_mailgate(mg.config, "worker", "--threads", "1")
    try:
        wait_for(lambda: mg.outcomes()[first][0] == "processed", what="embedded worker")
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.communicate(timeout=10)
    second = mg.receive(mail(sender="kim@acme.test"))
    _burst(mg)
    assert mg.outcomes() == {
        first: ("processed", "new_ticket"),
        second: ("processed", "new_ticket"),
    }


def test_worker_processes_die_with_a_sigkilled_worker(make_install: Callable[..., Install]) -> None:
    """`worker --processes 2` SIGKILLed: its processes must not live on and keep working
    beside the worker that replaces it."""
    mg = make_install("sqlite")
    worker = spawn_mailgate(mg.config, "worker", "--processes", "2", "--threads", "1")
    try:
        first = mg.receive(mail(sender="jo@acme.test"))
        wait_for(lambda: mg.outcomes()[first][0] == "processed", what="the processes working")
        # Two worker processes (and multiprocessing's resource tracker beside them).
        wait_for(lambda: len(children_of(worker.pid)) >= 2, what="2 processes")
    finally:
        children = children_of(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)  # not communicate: orphans would hold its pipes open
    try:
        wait_for(lambda: not any(alive(pid) for pid in children), what="processes to die")
    finally:
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        worker.communicate(timeout=10)
