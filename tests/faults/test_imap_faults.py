"""Issue 10: the IMAP poller under faults. A throwaway Dovecot holds N messages in INBOX;
`mailgate imap` is SIGKILLed at seeded points mid-pass and started again, and Dovecot
itself is restarted once under it. Every message moved off INBOX (to Processed, how the
poller says "done") must be in exactly one outcome, nothing doubled, INBOX empty."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import SECRET
from tests.dovecot import PASSWORD, Dovecot
from tests.faults.load import load_message
from tests.faults.support import (
    _env,
    fault_seed,
    message_id_of,
    read_ledger,
    run_mailgate,
    scaled,
    wait_for,
)
from tests.test_imap_cli import expire_leases

pytestmark = [pytest.mark.faults, pytest.mark.dovecot]

BATCH = 10


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
        f'[security]\nsecret = "{SECRET}"\n[queue]\nbroker = "embedded"\n'
        f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n'
        f'[[imap.mailboxes]]\nname = "support"\nport = {port}\nsecurity = "none"\n'
        f'username = "support"\npassword = "{PASSWORD}"\npoll_interval = 1\n'
        f"batch_size = {BATCH}\n"
    )
    return path


def _poller(config: Path) -> subprocess.Popen[bytes]:
    # Each start logs to a file of its own: a pipe nobody reads fills up on a long drain
    # and the poller would block writing to it.
    n = len(list(config.parent.glob("imap-*.log")))
    with (config.parent / f"imap-{n}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(config), "imap"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=_env(),
            cwd=config.parent,
        )


def _last_log(config: Path) -> str:
    n = len(list(config.parent.glob("imap-*.log"))) - 1
    return (config.parent / f"imap-{n}.log").read_text(errors="replace")


def _log_tail(config: Path) -> str:
    return "".join(_last_log(config).splitlines(True)[-30:])


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM inbound_messages")).scalar())
    except sa.exc.OperationalError:  # not migrated yet
        return 0
    finally:
        engine.dispose()


def _message_ids(dovecot: Dovecot, folder: str) -> list[str]:
    with dovecot.client() as client:
        if not client.folder_exists(folder):
            return []
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
    return [
        message_id_of(b"\r\n" + data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])
        for data in fetched.values()
    ]


def test_imap_poller_sigkilled_and_dovecot_restarted_loses_and_doubles_nothing(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    total = scaled(150, 2000)
    kills = rng.randint(scaled(2, 6), scaled(3, 10))
    points = sorted(rng.sample(range(5, total - 5), kills + 1))
    restart_at = points.pop(rng.randrange(len(points)))  # Dovecot restarts here, once
    db = tmp_path / "m.db"
    config = _config(tmp_path, dovecot.port)
    messages = [load_message(f"i{seed}", n) for n in range(total)]
    with dovecot.client() as client:
        client.multiappend("INBOX", [raw for _, raw in messages])
    started = time.monotonic()
    poller = _poller(config)
    stored_at_kill: list[int] = []
    restarted = False
    try:
        for point in points:
            if not restarted and restart_at < point:
                wait_for(
                    lambda w=poller: _stored(db) >= restart_at or w.poll() is not None,
                    timeout=120,
                    what=f"{restart_at} stored before the Dovecot restart",
                )
                dovecot.restart()  # every session it had is cut; the poller reconnects
                restarted = True
            wait_for(
                lambda p=point, w=poller: _stored(db) >= p or w.poll() is not None,
                timeout=120,
                what=f"{point} stored",
            )
            time.sleep(rng.uniform(0, 0.05))  # between a commit and its move, maybe
            poller.send_signal(signal.SIGKILL)
            poller.wait(timeout=30)
            stored_at_kill.append(_stored(db))
            # The dead poller's lease would keep a new one waiting its 60 s out.
            expire_leases(db)
            poller = _poller(config)
        if not restarted:
            wait_for(lambda: _stored(db) >= restart_at, timeout=120, what="the restart point")
            dovecot.restart()
        wait_for(
            lambda: dovecot.count("INBOX") == 0,
            timeout=scaled(120, 1200),
            what="INBOX drained",
        )
        # SIGTERM before its handler is installed would kill a poller just started.
        wait_for(lambda: "watching 1 mailbox" in _last_log(config), what="the poller up")
        poller.send_signal(signal.SIGTERM)
        assert poller.wait(timeout=60) == 0, _log_tail(config)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- mailgate imap log ---\n{_log_tail(config)}") from None
    finally:
        if poller.poll() is None:
            poller.kill()
            poller.wait(timeout=30)
    burst = run_mailgate(config, "worker", "--burst")
    assert burst.returncode == 0, burst.stderr
    moved = _message_ids(dovecot, "Processed")
    ledger = read_ledger(f"sqlite:///{db}", set(moved))
    print(
        f"imap faults: seed={seed} sent={total} kills={kills} at={points} "
        f"stored_at_kill={stored_at_kill} dovecot_restart_at={restart_at} "
        f"moved={len(moved)} moved_twice={len(moved) - len(set(moved))} "
        f"left_in_inbox={dovecot.count('INBOX')} "
        f"inbound_rows={sum(len(r) for r in ledger.rows.values())} "
        f"outcomes={ledger.outcomes()} duplicates={len(ledger.doubled)} lost={len(ledger.lost)} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    assert sorted(moved) == sorted(mid for mid, _ in messages)  # all N, each moved once
    assert not ledger.lost
    assert not ledger.doubled
    assert not ledger.unfinished
    assert all(len(found) == 1 for found in ledger.rows.values())  # a re-fetch adds no row
