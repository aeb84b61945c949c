"""Issue 10, reduced and seeded: the broker (Redis, RabbitMQ) dies or stops under load
and comes back. The receiver keeps answering 250 meanwhile (the database row is the
truth, DESIGN.md §1), the worker rides it out without a restart, and the reconciler
brings back every id the broker lost: nothing lost, nothing doubled, no notice twice.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.load import Client, load_message, read_notices
from tests.faults.services import (
    RabbitServer,
    RedisServer,
    Worker,
    assert_no_traceback,
    outage_config,
    wait_drained,
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
# Seconds between two new messages: about 40 a second, steady, so a RabbitMQ restart
# (~5 s) meets a few hundred messages, not all the receiver could take.
RATE = 0.025


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Iterator[RedisServer | RabbitServer]:
    """A broker of this test's own, never the shared one other tests use."""
    server = RedisServer() if request.param == "redis" else RabbitServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def test_broker_outage_under_load_loses_and_doubles_nothing(
    broker: RedisServer | RabbitServer, tmp_path: Path
) -> None:
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    # A RabbitMQ node takes ~5 s to start, Redis a few milliseconds.
    rounds = scaled(1, 4) if isinstance(broker, RabbitServer) else scaled(3, 10)
    db_url = f"sqlite:///{tmp_path / 'm.db'}"
    outbox = tmp_path / "outbox"
    port = free_port()
    config = outage_config(tmp_path, port=port, db_url=db_url, broker=broker.url, outbox=outbox)
    upgrade = run_mailgate(config, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    receiver = Receiver(config, port)
    worker = Worker(config, tmp_path / "worker.log")
    # A steady load for as long as the schedule runs.
    load = (load_message(f"b{seed}", n) for n in itertools.count())
    client = Client(port, load, interval=RATE)
    schedule: list[str] = []
    windows: list[tuple[float, float]] = []  # (broker down, restart begun)
    started = time.monotonic()
    try:
        receiver.start()
        worker.start()
        client.start()
        for _ in range(rounds):
            client.wait_acknowledged(len(client.acknowledged) + rng.randint(10, scaled(40, 150)))
            how = rng.choice(["kill", "stop"])
            schedule.append(f"{how}@{len(client.acknowledged)}")
            broker.kill() if how == "kill" else broker.stop()
            down = time.monotonic()
            # The promise under test: mail is still taken while the broker is away.
            more = rng.randint(5, scaled(20, 100))
            client.wait_acknowledged(
                len(client.acknowledged) + more,
                timeout=60,
                what=f"{more} acknowledgements with the broker down",
            )
            broker.start()
            windows.append((down, time.monotonic()))
        client.wait_acknowledged(len(client.acknowledged) + 10)  # and after the last restart
        client.close()
        client.finish(timeout=60)
        # The same worker, never restarted, must finish everything.
        load_seconds = time.monotonic() - started
        wait_drained(db_url, worker, timeout=scaled(120, 900))
        drain_seconds = time.monotonic() - started - load_seconds
        assert worker.stop() == 0, worker.output()[-3000:]
    finally:
        client.close()
        receiver.stop()
        if worker.proc is not None and worker.proc.poll() is None:
            worker.stop()
    sent = set(client.sent)
    ledger = read_ledger(db_url, client.acknowledged)
    notices = read_notices(db_url, outbox)
    acked_while_down = [client.codes_within(a, b)[250] for a, b in windows]
    print(
        f"{broker.name} outage: seed={seed} sent={len(sent)} attempts={client.attempts} "
        f"retried={client.failures} outages={schedule} acked_while_down_or_starting={acked_while_down} "
        f"broker_start_s={[round(s, 1) for s in broker.start_seconds]} "
        f"acknowledged={len(ledger.acknowledged)} inbound_rows="
        f"{sum(len(r) for r in ledger.rows.values())} outcomes={ledger.outcomes()} "
        f"duplicates={len(ledger.doubled)} lost={len(ledger.lost)} notices={len(notices.rows)} "
        f"notice_files={len(notices.files)} notices_doubled={len(notices.doubled)} "
        f"load_s={load_seconds:.1f} drain_s={drain_seconds:.1f} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    assert_no_traceback("mailgate smtp", "".join(receiver.lines))
    assert_no_traceback("mailgate worker", worker.output())
    assert client.acknowledged == sent
    assert all(acked_while_down), acked_while_down
    assert not ledger.lost
    assert not ledger.doubled
    assert not ledger.unfinished
    # The receiver never failed a message, so no sender had cause to send one twice.
    assert set(ledger.rows) == sent
    assert all(len(found) == 1 for found in ledger.rows.values())
    assert ledger.outcomes() == {"new_ticket": len(sent)}
    # One acknowledgement per ticket, each written to the outbox once under its own id.
    assert not notices.doubled
    assert not notices.unsent
    assert not notices.mismatched
    assert not notices.stray
    assert notices.file_message_ids_doubled == 0
    assert notices.sent == len(sent)
