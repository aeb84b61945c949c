"""Delivery through real loopback smarthosts: exactly one delivery per notice where
delivery is possible, counted on the server; 4xx retried with backoff, 5xx failed."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from mailgate.core.backoff import next_attempt
from mailgate.core.settings import OutboundSettings, OutboundSmtpSettings, Settings
from mailgate.db.models import Notice
from mailgate.db.store import Store
from mailgate.inbound.handoff import process_and_send
from mailgate.outbound import delivery
from mailgate.outbound.sender import send_notice, send_pending
from mailgate.outbound.transport import STALE_TEMPORARY_SECONDS, SmtpTransport
from tests.builders import build, deliver
from tests.conftest import fixed_clock
from tests.smarthost import Smarthost, free_port, running

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _smtp(settings: Settings, port: int, **outbound: object) -> Settings:
    smtp = OutboundSmtpSettings(host="127.0.0.1", port=port, security="none", timeout=5)
    return dataclasses.replace(
        settings,
        outbound=dataclasses.replace(settings.outbound, transport="smtp", smtp=smtp, **outbound),
    )


def _notice(store: Store, notice_id: int = 1) -> Notice:
    with store.transaction() as session:
        return session.get_one(Notice, notice_id)


def _new_ticket(store: Store, settings: Settings, n: int = 1) -> None:
    for i in range(n):
        raw = build(sender=f"c{i}@customer.test", message_id=f"<c{i}@customer.test>")
        deliver(store, settings, raw, fixed_clock(T0))


@pytest.mark.parametrize(
    ("attempts", "minutes"), [(1, 1), (2, 2), (3, 4), (6, 32), (9, 256), (10, 360), (40, 360)]
)
def test_backoff(attempts: int, minutes: int) -> None:
    """Retries back off exponentially from one minute, capped at six hours."""
    assert next_attempt(attempts, T0) == T0 + timedelta(minutes=minutes)


def test_accepting_smarthost_gets_each_notice_once(store: Store, settings: Settings) -> None:
    """Processing sends inline after commit; sending again delivers nothing more."""
    host = Smarthost()
    with running(host) as port:
        s = _smtp(settings, port)
        result = process_and_send(store, _accept(store, s), settings=s, now=fixed_clock(T0))
        assert result.notice_ids == (1,)
        send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(hours=1)))
        send_notice(
            store, 1, settings=s, transport=SmtpTransport(s.outbound.smtp), now=fixed_clock(T0)
        )
    notice = _notice(store)
    assert len(host.received) == 1 and notice.state == "sent" and notice.attempts == 1
    got = host.received[0]
    assert got.mail_from == "support@example.com" and got.rcpt_tos == ["alice@customer.test"]
    assert got.message["Message-ID"] == f"<{notice.message_id}>"


def _accept(store: Store, settings: Settings) -> int:
    from mailgate.inbound.intake import Envelope, accept

    return accept(
        store, build(), source="ingest", envelope=Envelope(), max_bytes=10**7, now=fixed_clock(T0)
    ).inbound_id


def test_451_then_250_is_retried_once_with_backoff(store: Store, settings: Settings) -> None:
    """A 4xx leaves the notice pending until its backoff time, then it goes once."""
    host = Smarthost(replies=["451 4.3.0 try later", "250 OK"])
    _new_ticket(store, settings)
    with running(host) as port:
        s = _smtp(settings, port)
        first = send_pending(store, settings=s, now=fixed_clock(T0))
        notice = _notice(store)
        assert (first.retrying, notice.state, notice.attempts) == (1, "pending", 1)
        assert "451" in notice.last_error
        early = send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(seconds=30)))
        due = send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(seconds=61)))
        again = send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(days=1)))
    assert (early.sent, due.sent, again.sent) == (0, 1, 0)
    assert len(host.received) == 1 and _notice(store).state == "sent"


def test_550_fails_with_the_server_reply(store: Store, settings: Settings) -> None:
    """A 5xx marks the notice failed with the reply; it is never tried again by itself."""
    host = Smarthost(replies=["550 5.1.1 no such user"])
    _new_ticket(store, settings)
    with running(host) as port:
        s = _smtp(settings, port)
        send_pending(store, settings=s, now=fixed_clock(T0))
        later = send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(days=1)))
    notice = _notice(store)
    assert (notice.state, later.sent, len(host.received)) == ("failed", 0, 0)
    assert notice.last_error == "550 5.1.1 no such user"


def test_smarthost_down_then_up(store: Store, settings: Settings) -> None:
    """Connection refused is temporary; once the server is up the notice goes once."""
    port = free_port()
    s = _smtp(settings, port)
    _new_ticket(store, settings)
    down = send_pending(store, settings=s, now=fixed_clock(T0))
    assert down.retrying == 1 and "unavailable" in _notice(store).last_error
    host = Smarthost()
    with running(host, port):
        up = send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(minutes=2)))
        send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(minutes=30)))
    assert up.sent == 1 and len(host.received) == 1 and _notice(store).state == "sent"


def test_one_connection_per_batch(store: Store, settings: Settings) -> None:
    """A batch of notices reuses one SMTP connection."""
    host = Smarthost()
    _new_ticket(store, settings, n=3)
    with running(host) as port:
        report = send_pending(store, settings=_smtp(settings, port), now=fixed_clock(T0))
    assert report.sent == 3 and len(host.received) == 3 and host.connections == 1


def test_gives_up_after_max_attempts(store: Store, settings: Settings) -> None:
    """A notice that only ever meets 4xx is marked failed after outbound.max_attempts."""
    host = Smarthost(replies=["421 4.7.0 busy"])
    _new_ticket(store, settings)
    with running(host) as port:
        s = _smtp(settings, port, max_attempts=3)
        for hour in range(5):
            send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(hours=hour)))
    notice = _notice(store)
    assert (notice.state, notice.attempts) == ("failed", 3)
    assert notice.last_error.startswith("gave up after 3 attempts")


def test_two_senders_at_once_deliver_once(store: Store, settings: Settings) -> None:
    """Two workers sending the same notice concurrently: the row lock lets one through."""
    host = Smarthost()
    _new_ticket(store, settings)
    with running(host) as port:
        s = _smtp(settings, port)
        states: list[str] = []
        barrier = threading.Barrier(2)

        def worker() -> None:
            barrier.wait()
            transport = SmtpTransport(s.outbound.smtp)
            states.append(
                send_notice(store, 1, settings=s, transport=transport, now=fixed_clock(T0))
            )
            transport.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert states == ["sent", "sent"] and len(host.received) == 1
    with store.transaction() as session:
        assert session.scalars(select(Notice.attempts)).one() == 1


def test_file_transport_overwrites_on_resend(store: Store, settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The file transport writes one .eml named by notice id, atomically, and no temp files."""
    folder = tmp_path / "outbox"
    s = dataclasses.replace(settings, outbound=OutboundSettings(folder=str(folder)))
    _new_ticket(store, s, n=2)
    send_pending(store, settings=s, now=fixed_clock(T0))
    assert sorted(p.name for p in folder.iterdir()) == ["notice-1.eml", "notice-2.eml"]


def test_file_transport_sweeps_only_stale_leftovers(
    store: Store, settings: Settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """A write a kill interrupted leaves `.notice-*.tmp`; the next transport removes it
    once it is older than any write takes, and never a fresh one (another process's
    write in progress)."""
    folder = tmp_path / "outbox"
    folder.mkdir()
    stale, fresh = folder / ".notice-abc.tmp", folder / ".notice-def.tmp"
    stale.write_bytes(b"half a notice")
    fresh.write_bytes(b"a write in progress")
    old = time.time() - STALE_TEMPORARY_SECONDS - 60
    os.utime(stale, (old, old))
    s = dataclasses.replace(settings, outbound=OutboundSettings(folder=str(folder)))
    _new_ticket(store, s, n=1)
    send_pending(store, settings=s, now=fixed_clock(T0))
    assert sorted(p.name for p in folder.iterdir()) == [".notice-def.tmp", "notice-1.eml"]


def test_a_batch_is_composed_before_it_takes_the_write_lock(
    store: Store, settings: Settings, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The file outbox's batch composes its notices before it claims them: while each is
    composed, another writer gets the lock at once (SQLite: the file's write lock;
    PostgreSQL: the notice's row), so storing and processing mail never waits for a
    hundred notices to be rendered. Then each is claimed, written and marked once."""
    folder = tmp_path / "outbox"
    s = dataclasses.replace(settings, outbound=OutboundSettings(folder=str(folder)))
    _new_ticket(store, s, n=3)
    url = store.engine.url
    free: list[bool] = []
    build_message = delivery.build_message

    def probed(notice: Notice, *args: object, **kwargs: object) -> object:
        if url.get_backend_name() == "sqlite":
            probe = sqlite3.connect(url.database, timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                free.append(True)
            except sqlite3.OperationalError:  # "database is locked"
                free.append(False)
            finally:
                probe.close()
        else:
            with store.engine.connect() as probe:
                row = probe.execute(
                    text("SELECT id FROM notices WHERE id = :id FOR UPDATE SKIP LOCKED"),
                    {"id": notice.id},
                ).first()
                free.append(row is not None)
                probe.rollback()
        return build_message(notice, *args, **kwargs)

    monkeypatch.setattr(delivery, "build_message", probed)
    send_pending(store, settings=s, now=fixed_clock(T0))
    assert free == [True, True, True]
    with store.transaction() as session:
        sent = session.execute(select(Notice.state, Notice.attempts)).all()
    assert sent == [("sent", 1)] * 3
    assert sorted(p.name for p in folder.iterdir()) == [f"notice-{n}.eml" for n in (1, 2, 3)]
