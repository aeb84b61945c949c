"""Issues 8 and 10: `mailgate run` (smtp and worker roles, SQLite, embedded queue, file
outbox) SIGKILLed or SIGTERMed as a whole under an SMTP load, then started again. The
ledger afterwards: nothing acknowledged lost, nothing doubled, every row final, one
notice per ticket and one ``.eml`` per sent notice."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.faults.load import Client, Notices, load_message, read_notices
from tests.faults.processes import MailgateRun, alive
from tests.faults.support import (
    Ledger,
    fault_seed,
    free_port,
    read_ledger,
    run_mailgate,
    scaled,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.faults

STOP_TIMEOUT = 20  # run.stop_timeout_seconds: how long SIGTERM may take


def _config(tmp_path: Path, port: int) -> Path:
    return write_config(
        tmp_path,
        port=port,
        extra=(
            f'[outbound]\ntransport = "file"\nfolder = "{tmp_path / "outbox"}"\n'
            f'[run]\nroles = ["smtp", "worker"]\nstop_timeout_seconds = {STOP_TIMEOUT}\n'
        ),
    )


def _settle(tmp_path: Path, config: Path, acknowledged: set[str]) -> tuple[Ledger, Notices]:
    """After the last run: what a `worker --burst` leaves, as the ledger and the outbox."""
    burst = run_mailgate(config, "worker", "--burst")
    assert burst.returncode == 0, burst.stderr
    db = f"sqlite:///{tmp_path / 'm.db'}"
    return read_ledger(db, acknowledged), read_notices(db, tmp_path / "outbox")


def _check(ledger: Ledger, notices: Notices, messages: list[tuple[str, bytes]]) -> None:
    assert len(ledger.acknowledged) == len(messages)
    assert not ledger.lost
    assert not ledger.doubled
    assert not ledger.unfinished
    assert set(ledger.rows) <= {mid for mid, _ in messages}
    for found in ledger.rows.values():
        outcomes = sorted(outcome for _, outcome in found)
        assert outcomes.count("duplicate") == len(found) - 1, outcomes
    # One acknowledgement per new ticket, each sent once, each a file of its own.
    assert notices.sent == ledger.outcomes().get("new_ticket", 0)
    assert not notices.unsent
    assert not notices.doubled
    assert not notices.mismatched and not notices.stray
    assert notices.file_message_ids_doubled == 0


def _figures(client: Client, ledger: Ledger, notices: Notices) -> str:
    return (
        f"sent={len(client.sent)} attempts={client.attempts} retried={client.failures} "
        f"replies={dict(client.replies)} acknowledged={len(ledger.acknowledged)} "
        f"inbound_rows={sum(len(r) for r in ledger.rows.values())} "
        f"redelivered={ledger.redelivered} outcomes={ledger.outcomes()} "
        f"duplicates={len(ledger.doubled)} lost={len(ledger.lost)} notices_sent={notices.sent} "
        f"eml_files={len(notices.files)} interrupted_writes={len(notices.interrupted)}"
    )


def test_run_sigkilled_with_its_roles_then_restarted(tmp_path: Path) -> None:
    """SIGKILL the supervisor alone: its roles die with it (the port is free again, so a
    new run binds it), and the ledger is clean after the load completes."""
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    total = scaled(120, 1500)
    kills = rng.randint(scaled(2, 6), scaled(3, 10))
    kill_at = sorted(rng.sample(range(10, total - 10), kills))
    port = free_port()
    config = _config(tmp_path, port)
    messages = [load_message(f"r{seed}", n) for n in range(total)]
    run = MailgateRun(config)
    run.start()
    client = Client(port, messages)
    started = time.monotonic()
    client.start()
    orphans: list[int] = []
    try:
        for point in kill_at:
            client.wait_acknowledged(point)
            time.sleep(rng.uniform(0, 0.05))  # somewhere inside a commit or a ticket
            roles = run.kill()
            assert len(roles) == 2, roles  # smtp and worker were running
            wait_for(
                lambda r=roles: not any(alive(pid) for pid in r),
                timeout=10,
                what="roles to die with their supervisor",
            )
            orphans += [pid for pid in roles if alive(pid)]
            time.sleep(rng.uniform(0, 0.2))
            run.start()  # binds the same SMTP port: nothing of the old run holds it
        client.finish(timeout=scaled(150, 1500))
        code = run.terminate(timeout=STOP_TIMEOUT + 10)
    finally:
        run.stop()
    assert code == 0, "".join(run.lines[-20:])
    ledger, notices = _settle(tmp_path, config, client.acknowledged)
    print(
        f"run SIGKILL: seed={seed} kills={kills} at={kill_at} "
        f"{_figures(client, ledger, notices)} orphans={len(orphans)} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    assert not orphans
    assert client.permanent == 0, client.replies
    _check(ledger, notices, messages)


def test_sigterm_during_load_drains_and_loses_nothing(tmp_path: Path) -> None:
    """Issue 8: SIGTERM `mailgate run` mid-load. It exits 0 within its stop timeout,
    everything it acknowledged is already stored, the client never sees a 5xx, and
    after a restart the load completes with nothing lost or doubled."""
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    total = scaled(120, 1500)
    stops = rng.randint(scaled(1, 3), scaled(2, 6))
    stop_at = sorted(rng.sample(range(10, total - 10), stops))
    port = free_port()
    config = _config(tmp_path, port)
    db = f"sqlite:///{tmp_path / 'm.db'}"
    messages = [load_message(f"t{seed}", n) for n in range(total)]
    run = MailgateRun(config)
    run.start()
    client = Client(port, messages)
    started = time.monotonic()
    client.start()
    drains: list[float] = []
    try:
        for point in stop_at:
            client.wait_acknowledged(point)
            time.sleep(rng.uniform(0, 0.05))
            signalled = time.monotonic()
            code = run.terminate(timeout=STOP_TIMEOUT + 10)
            drains.append(round(time.monotonic() - signalled, 2))
            assert code == 0, "".join(run.lines[-20:])
            # Whatever got 250 before the exit is committed, not merely in memory.
            acked = set(client.acknowledged)
            stored = read_ledger(db, acked)
            assert not {m for m in acked if m not in stored.rows}, "acknowledged, not stored"
            time.sleep(rng.uniform(0, 0.3))
            run.start()
        client.finish(timeout=scaled(150, 1500))
        code = run.terminate(timeout=STOP_TIMEOUT + 10)
    finally:
        run.stop()
    assert code == 0, "".join(run.lines[-20:])
    ledger, notices = _settle(tmp_path, config, client.acknowledged)
    print(
        f"run SIGTERM: seed={seed} stops={stops} at={stop_at} drain_seconds={drains} "
        f"{_figures(client, ledger, notices)} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    assert client.permanent == 0, client.replies
    assert all(code == 0 or 400 <= code < 500 for code in client.replies), client.replies
    assert all(d < STOP_TIMEOUT for d in drains), drains
    _check(ledger, notices, messages)
