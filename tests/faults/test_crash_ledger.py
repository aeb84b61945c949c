"""Issue 10, reduced and seeded: SIGKILL the receiver and the worker under load, then
check the ledger (invariants 1 and 2: nothing acknowledged is lost, nothing doubled)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailgate.core import config as mailgate_config
from mailgate.inbound.intake import Envelope, accept
from tests.faults.load import Client, load_message
from tests.faults.support import (
    Receiver,
    fault_seed,
    free_port,
    kill_bursts_at,
    read_ledger,
    run_mailgate,
    scaled,
    write_config,
)
from tests.worker_support import ready_store

pytestmark = pytest.mark.faults


def test_receiver_sigkilled_under_load_loses_and_doubles_nothing(
    tmp_path: Path, db_url: str
) -> None:
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    total = scaled(150, 2000)
    kills = rng.randint(scaled(2, 8), scaled(3, 12))
    kill_at = sorted(rng.sample(range(10, total - 10), kills))
    port = free_port()
    config = write_config(tmp_path, port=port, db_url=db_url)
    upgraded = run_mailgate(config, "db", "upgrade")  # PostgreSQL is never migrated implicitly
    assert upgraded.returncode == 0, upgraded.stderr
    messages = [load_message(str(seed), n) for n in range(total)]
    receiver = Receiver(config, port)
    receiver.start()
    client = Client(port, messages)
    started = time.monotonic()
    client.start()
    try:
        for point in kill_at:
            client.wait_acknowledged(point)
            time.sleep(rng.uniform(0, 0.03))  # land somewhere inside a transaction
            receiver.kill()
            time.sleep(rng.uniform(0, 0.2))
            receiver.start()
        client.finish(timeout=scaled(150, 1200))
    finally:
        receiver.stop()
    burst = run_mailgate(config, "worker", "--burst")
    assert burst.returncode == 0, burst.stderr
    ledger = read_ledger(db_url, client.acknowledged)
    print(
        f"receiver crash ({db_url.partition(':')[0]}): seed={seed} sent={total} attempts={client.attempts} "
        f"retried={client.failures} kills={kills} at={kill_at} "
        f"acknowledged={len(ledger.acknowledged)} inbound_rows="
        f"{sum(len(r) for r in ledger.rows.values())} redelivered={ledger.redelivered} "
        f"outcomes={ledger.outcomes()} duplicates={len(ledger.doubled)} lost={len(ledger.lost)} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    assert len(ledger.acknowledged) == total
    assert not ledger.lost
    assert not ledger.doubled
    assert not ledger.unfinished
    # Rows come only from messages we sent; a redelivery's extra row says "duplicate".
    assert set(ledger.rows) <= {mid for mid, _ in messages}
    for found in ledger.rows.values():
        outcomes = sorted(outcome for _, outcome in found)
        assert outcomes.count("duplicate") == len(found) - 1, outcomes


def test_worker_sigkilled_mid_drain_loses_and_doubles_nothing(tmp_path: Path, db_url: str) -> None:
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    total = scaled(80, 1000)
    config = write_config(tmp_path, port=free_port(), db_url=db_url)
    settings = mailgate_config.load(config, {})
    store = ready_store(settings)
    messages = [load_message(f"w{seed}", n) for n in range(total)]
    try:
        for _, raw in messages:
            accept(
                store,
                raw,
                source="smtp",
                envelope=Envelope(),
                max_bytes=10**7,
                now=lambda: datetime.now(UTC),
            )
    finally:
        store.engine.dispose()
    mids = {mid for mid, _ in messages}
    kills = rng.randint(scaled(2, 8), scaled(3, 12))
    kill_at = sorted(rng.sample(range(5, total - 5), kills))
    started = time.monotonic()

    def processed() -> int:
        ledger = read_ledger(db_url, mids)
        return sum(1 for found in ledger.rows.values() for s, _ in found if s != "received")

    done_at_kill = kill_bursts_at(config, tmp_path, kill_at, processed, rng)
    burst = run_mailgate(config, "worker", "--burst")
    assert burst.returncode == 0, burst.stderr
    ledger = read_ledger(db_url, mids)
    print(
        f"worker crash ({db_url.partition(':')[0]}): seed={seed} sent={total} kills={kills} at={kill_at} "
        f"processed_at_kill={done_at_kill} inbound_rows={sum(len(r) for r in ledger.rows.values())} "
        f"outcomes={ledger.outcomes()} duplicates={len(ledger.doubled)} lost={len(ledger.lost)} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    assert not ledger.lost
    assert not ledger.doubled
    assert not ledger.unfinished
    assert all(len(found) == 1 for found in ledger.rows.values())
