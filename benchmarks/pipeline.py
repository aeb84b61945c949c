"""End to end: emails to tickets per second, and latency from receipt (intake commit)
to ticket committed, with real `mailgate worker` processes.

    python benchmarks/pipeline.py [--messages 300] [--latency-messages 150]

Scenarios: SQLite with the embedded queue (and, for reference, the receiver
processing inline as `mailgate run` does on one box), and PostgreSQL with Redis,
each at 1 and 2 worker processes of 4 threads. Per scenario:

1. throughput: ``--messages`` are committed as fast as intake allows and queued;
   tickets/s = messages / (last ticket seen - first intake commit);
2. latency: ``--latency-messages`` are offered at half that rate; p50/p99 of
   (ticket committed seen) - (intake commit returned).

A ticket counts as committed when its inbound row reads ``processed``, which is
written in the same transaction; a poller looks every 5 ms, so latencies are
upper bounds by up to 5 ms plus one query. Bounded: every wait has a deadline.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailgate.core import config  # noqa: E402 - after the path is set
from mailgate.db.store import Store, open_store  # noqa: E402
from mailgate.inbound.intake import Envelope, accept  # noqa: E402
from mailgate.jobs import enqueue_inbound  # noqa: E402
from mailgate.jobs.broker import forget_brokers  # noqa: E402
from mailgate.tickets.mail import process  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
SECRET = "benchmark-secret-0123456789abcdef"  # noqa: S105 - a throwaway HMAC key
AGENTS = "".join(f'[[agents]]\nemail = "a{i}@example.com"\nteams = ["support"]\n' for i in range(4))
DIRECTORY = f"""
[[teams]]
name = "support"
assignment = "round_robin"
{AGENTS}
[[customers]]
name = "Acme"
domains = ["acme.test"]
[[rules]]
name = "outages"
when = {{ subject = "(?i)outage" }}
set = {{ type = "Technical", priority = "Urgent" }}
"""
DEADLINE = 180.0


def _utc() -> datetime:
    return datetime.now(UTC)


def _mail(i: int) -> bytes:
    subject = "Outage in the north" if i % 5 == 0 else f"Question number {i}"
    return (
        f"From: user{i % 40}@acme.test\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@acme.test>\r\n\r\n"
        + "Hello, something does not work as expected.\r\n"
        * 20
    ).encode()


@dataclass
class Watch:
    """Polls the database and notes when each inbound row stops being ``received``."""

    url: str
    committed: dict[int, float] = field(default_factory=dict)
    seen: dict[int, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        engine = sa.create_engine(self.url)
        query = sa.text("SELECT id FROM inbound_messages WHERE state <> 'received' AND id >= :low")
        with engine.connect() as conn:
            while not self.stop.is_set():
                pending = [i for i in list(self.committed) if i not in self.seen]
                if pending:
                    for (inbound_id,) in conn.execute(query, {"low": min(pending)}):
                        self.seen.setdefault(inbound_id, time.perf_counter())
                    conn.rollback()
                time.sleep(0.005)
        engine.dispose()

    def wait(self, ids: list[int]) -> None:
        deadline = time.monotonic() + DEADLINE
        while any(i not in self.seen for i in ids):
            if time.monotonic() > deadline:
                raise SystemExit(f"benchmark: timed out; {len(ids) - len(self.seen)} not done")
            time.sleep(0.01)


@dataclass
class Result:
    name: str
    throughput: float
    p50_ms: float
    p99_ms: float
    messages: int


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Scenario:
    def __init__(self, name: str, db: str, broker: str, processes: int, tmp: Path) -> None:
        self.name, self.processes = name, processes
        self.schema = ""
        if db == "postgres":
            self.schema = f"bench_{uuid.uuid4().hex[:10]}"
            with sa.create_engine(PG, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{self.schema}"'))
            url = f"{PG}?options=-csearch_path%3D{self.schema}"
        else:
            url = f"sqlite:///{tmp / 'bench.db'}"
        self.queue_name = f"bench{uuid.uuid4().hex[:10]}"
        self.path = tmp / "mailgate.toml"
        self.path.write_text(
            f'[database]\nurl = "{url}"\n[security]\nsecret = "{SECRET}"\n'
            f'[queue]\nbroker = "{broker}"\nname = "{self.queue_name}"\n' + DIRECTORY
        )
        self.settings = config.load(self.path, {})
        migrate = Store(url)
        migrate.upgrade()
        migrate.engine.dispose()
        self.store = open_store(self.settings)
        self.watch = Watch(url)
        self.worker: subprocess.Popen[bytes] | None = None

    def receive(self, i: int, inline: bool) -> int:
        inbound_id = accept(
            self.store, _mail(i), source="bench", envelope=Envelope(), max_bytes=10**7, now=_utc
        ).inbound_id
        self.watch.committed[inbound_id] = time.perf_counter()
        if inline:
            process(self.store, inbound_id, settings=self.settings, now=_utc)
        else:
            enqueue_inbound(self.settings, inbound_id)
        return inbound_id

    def run(self, messages: int, latency_messages: int) -> Result:
        inline = self.processes == 0
        if not inline:
            env = dict(os.environ, PYTHONPATH=str(REPO))
            self.worker = subprocess.Popen(
                [
                    *(sys.executable, "-m", "mailgate", "--config", str(self.path), "worker"),
                    *("--processes", str(self.processes), "--threads", "4"),
                ],
                env=env,
                cwd=self.path.parent,
                stderr=subprocess.DEVNULL,
            )
        self.watch.start()
        self.watch.wait([self.receive(-1, inline)])  # warm up: the workers are consuming
        first = time.perf_counter()
        ids = [self.receive(i, inline) for i in range(messages)]
        self.watch.wait(ids)
        throughput = messages / (max(self.watch.seen[i] for i in ids) - first)
        # Latency at half the measured capacity, so queueing does not dominate.
        interval = 2.0 / throughput
        latency_ids = []
        start = time.perf_counter()
        for n in range(latency_messages):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            latency_ids.append(self.receive(messages + n, inline))
        self.watch.wait(latency_ids)
        latencies = [(self.watch.seen[i] - self.watch.committed[i]) * 1000 for i in latency_ids]
        return Result(
            self.name,
            throughput,
            statistics.median(latencies),
            _percentile(latencies, 0.99),
            messages,
        )

    def close(self) -> None:
        self.watch.stop.set()
        if self.worker is not None:
            self.worker.send_signal(signal.SIGTERM)
            self.worker.wait(timeout=60)
        forget_brokers()
        self.store.engine.dispose()
        if self.schema:
            with sa.create_engine(PG, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        if self.settings.queue.broker.startswith("redis"):
            import redis

            client = redis.Redis.from_url(REDIS)
            keys = list(client.scan_iter(f"dramatiq:*{self.queue_name}*"))
            if keys:
                client.delete(*keys)
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300, help="throughput phase")
    parser.add_argument("--latency-messages", type=int, default=150, help="latency phase")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL and Redis")
    args = parser.parse_args()
    plan = [
        ("sqlite, embedded, inline in the receiver", "sqlite", "embedded", 0),
        ("sqlite, embedded queue, 1 worker process", "sqlite", "embedded", 1),
        ("sqlite, embedded queue, 2 worker processes", "sqlite", "embedded", 2),
    ]
    if not args.sqlite_only:
        plan += [
            ("postgresql + redis, 1 worker process", "postgres", REDIS, 1),
            ("postgresql + redis, 2 worker processes", "postgres", REDIS, 2),
        ]
    results = []
    for name, db, broker, processes in plan:
        with tempfile.TemporaryDirectory() as tmp:
            scenario = Scenario(name, db, broker, processes, Path(tmp))
            try:
                results.append(scenario.run(args.messages, args.latency_messages))
            finally:
                scenario.close()
        r = results[-1]
        print(f"  done: {r.name}", file=sys.stderr)
    print(f"{'scenario':<45} {'tickets/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(f"{r.name:<45} {r.throughput:>10.1f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f}")
    print(
        f"({args.messages} messages for throughput, {args.latency_messages} at half "
        f"that rate for latency; {os.cpu_count()} CPUs; 4 threads per worker process)"
    )


if __name__ == "__main__":
    main()
