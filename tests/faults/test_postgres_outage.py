"""Issue 10, reduced and seeded: PostgreSQL crashes (``pg_ctl stop -m immediate``)
under a steady SMTP load and comes back. While it is down the receiver answers 451,
never 250 (nothing is acknowledged that is not stored, invariant 1); afterwards the
receiver and the worker carry on without a restart of their own, and the ledger
shows nothing lost, nothing doubled, no notice twice.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.load import Client, load_message, read_notices
from tests.faults.processes import Worker, assert_no_traceback, outage_config, wait_drained
from tests.faults.services import (
    PostgresServer,
    RedisServer,
)
from tests.faults.support import (
    Receiver,
    fault_seed,
    free_port,
    read_ledger,
    run_mailgate,
    scaled,
)

pytestmark = pytest.mark.faults
RATE = 0.025  # seconds between two new messages: a steady ~40 a second


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    """A cluster of this test's own: the shared one must never be stopped."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.mark.parametrize("queue", ["embedded", "redis"])
def test_postgres_crash_under_load_answers_451_and_recovers(
    postgres: PostgresServer, queue: str, tmp_path: Path
) -> None:
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    rounds = scaled(3, 10)
    redis = RedisServer() if queue == "redis" else None
    outbox = tmp_path / "outbox"
    port = free_port()
    receiver: Receiver | None = None
    worker: Worker | None = None
    client: Client | None = None
    schedule: list[str] = []
    windows: list[Counter[int]] = []  # reply codes of attempts made while PostgreSQL was down
    started = time.monotonic()
    try:
        if redis is not None:
            redis.start()
        config = outage_config(
            tmp_path,
            port=port,
            db_url=postgres.url,
            broker=redis.url if redis is not None else "embedded",
            outbox=outbox,
        )
        upgrade = run_mailgate(config, "db", "upgrade")
        assert upgrade.returncode == 0, upgrade.stderr
        receiver = Receiver(config, port)
        worker = Worker(config, tmp_path / "worker.log")
        load = (load_message(f"p{seed}", n) for n in itertools.count())
        client = Client(port, load, interval=RATE)
        receiver.start()
        worker.start()
        client.start()
        for _ in range(rounds):
            client.wait_acknowledged(len(client.acknowledged) + rng.randint(10, scaled(40, 150)))
            schedule.append(f"crash@{len(client.acknowledged)}")
            postgres.crash()
            down = time.monotonic()
            time.sleep(rng.uniform(0.5, scaled(2.0, 6.0)))
            windows.append(client.codes_within(down, time.monotonic()))
            postgres.start()
            # Neither the receiver nor the worker is restarted: they must reconnect.
            client.wait_acknowledged(
                len(client.acknowledged) + 5,
                timeout=60,
                what="acknowledgements after PostgreSQL came back",
            )
        client.wait_acknowledged(len(client.acknowledged) + 10)
        client.close()
        client.finish(timeout=60)
        load_seconds = time.monotonic() - started
        wait_drained(postgres.url, worker, timeout=scaled(120, 900))
        drain_seconds = time.monotonic() - started - load_seconds
        assert worker.stop() == 0, worker.output()[-3000:]
    finally:
        if client is not None:
            client.close()
        if receiver is not None:
            receiver.stop()
        if worker is not None and worker.proc is not None and worker.proc.poll() is None:
            worker.stop()
        if redis is not None:
            redis.cleanup()
    sent = set(client.sent)
    ledger = read_ledger(postgres.url, client.acknowledged)
    notices = read_notices(postgres.url, outbox)
    print(
        f"postgres crash ({queue} queue): seed={seed} sent={len(sent)} "
        f"attempts={client.attempts} retried={client.failures} crashes={schedule} "
        f"replies_while_down={[dict(c) for c in windows]} "
        f"pg_start_s={[round(s, 2) for s in postgres.start_seconds]} "
        f"acknowledged={len(ledger.acknowledged)} inbound_rows="
        f"{sum(len(r) for r in ledger.rows.values())} redelivered={ledger.redelivered} "
        f"outcomes={ledger.outcomes()} duplicates={len(ledger.doubled)} lost={len(ledger.lost)} "
        f"notices={len(notices.rows)} notice_files={len(notices.files)} "
        f"notices_doubled={len(notices.doubled)} load_s={load_seconds:.1f} "
        f"drain_s={drain_seconds:.1f} seconds={time.monotonic() - started:.1f}"
    )
    # While the database was down every message was refused for now, none taken.
    for codes in windows:
        assert codes[451] > 0 and set(codes) == {451}, windows
    assert_no_traceback("mailgate smtp", "".join(receiver.lines))
    assert_no_traceback("mailgate worker", worker.output())
    assert client.acknowledged == sent
    assert not ledger.lost
    assert not ledger.doubled
    assert not ledger.unfinished
    assert set(ledger.rows) == sent
    # A commit that landed as the server died was answered 451 and sent again: its
    # second row says "duplicate", and nothing else came of it.
    for found in ledger.rows.values():
        outcomes = sorted(outcome for _, outcome in found)
        assert outcomes.count("duplicate") == len(found) - 1, outcomes
    assert ledger.outcomes().get("new_ticket") == len(sent)
    assert not notices.doubled
    assert not notices.unsent
    assert not notices.mismatched
    assert not notices.stray
    assert notices.file_message_ids_doubled == 0
    assert notices.sent == len(sent)
