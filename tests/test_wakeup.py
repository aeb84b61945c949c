"""A receiver beside an embedded worker (`mailgate run`) wakes it and leaves processing to
it (issue 23: processing off the acknowledgement path); alone, it processes itself."""

from __future__ import annotations

import smtplib
import socket
import threading
from pathlib import Path

from mailgate.core.states import InboundState
from mailgate.jobs import wakeup
from mailgate.jobs.wakeup import WakeListener, wake_workers
from tests.smtp_support import SUPPORT, message, rows, serving, smtp_settings, tickets, wait_until


def test_a_worker_socket_is_woken_and_removed_when_closed(tmp_path: Path) -> None:
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    woken = threading.Event()
    listener = WakeListener(settings, woken.set)
    try:
        assert listener.path.exists()
        assert listener.path.stat().st_mode & 0o077 == 0  # only our own user may write
        assert wake_workers(settings)
        assert woken.wait(5)
    finally:
        listener.close()
    assert not listener.path.exists()
    wakeup._listing.clear()  # the sender's one-second list of sockets
    assert not wake_workers(settings)


def test_a_socket_left_by_a_killed_worker_is_cleared(tmp_path: Path) -> None:
    """A socket file nobody listens on any more (its worker was SIGKILLed): the sender
    finds no one, says so, and removes the file."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    stale = Path(wakeup._folder()) / f"{wakeup._prefix(settings)}999999999.wake"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(stale))
    sock.close()  # bound, then gone without removing its file
    wakeup._listing.clear()
    assert stale.exists()
    assert not wake_workers(settings)
    assert not stale.exists()


def test_another_databases_worker_is_not_woken(tmp_path: Path) -> None:
    mine = smtp_settings(f"sqlite:///{tmp_path / 'a.db'}")
    other = smtp_settings(f"sqlite:///{tmp_path / 'b.db'}")
    woken = threading.Event()
    listener = WakeListener(other, woken.set)
    try:
        wakeup._listing.clear()
        assert not wake_workers(mine)
        assert not woken.wait(0.3)
    finally:
        listener.close()


def test_receiver_with_a_worker_beside_it_only_stores_and_wakes(tmp_path: Path) -> None:
    """With a worker listening, the 250 comes after the commit and the row waits, still
    `received`, for the worker that was woken; nothing is processed in the receiver."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    woken = threading.Event()
    listener = WakeListener(settings, woken.set)
    wakeup._listing.clear()
    try:
        with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port, timeout=30) as client:
            assert client.sendmail("alice@customer.test", [SUPPORT], message(1)) == {}
            assert woken.wait(5)
    finally:
        listener.close()
    [row] = rows(settings)
    assert row.state == InboundState.RECEIVED
    assert tickets(settings) == 0


def test_receiver_alone_processes_itself(tmp_path: Path) -> None:
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    wakeup._listing.clear()
    with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port, timeout=30) as client:
        assert client.sendmail("alice@customer.test", [SUPPORT], message(1)) == {}
        wait_until(lambda: tickets(settings) == 1, what="the receiver to process the message")
    [row] = rows(settings)
    assert row.state == InboundState.PROCESSED


def test_receiver_waits_out_a_writer_in_another_process(tmp_path: Path) -> None:
    """With a worker beside it, intake asks SQLite to wait only a few milliseconds per
    try and tries again itself: a write lock held elsewhere for longer than one try
    still ends in a 250 once it is released (a 451 would be wrong), and the row is
    stored."""
    import sqlite3

    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    listener = WakeListener(settings, lambda: None)  # the worker beside the receiver
    wakeup._listing.clear()
    with serving(settings) as srv:
        assert srv.server.committer.contended()
        other = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the write lock, as a worker's transaction holds it
        answers: list[object] = []

        def send() -> None:
            with smtplib.SMTP(srv.host, srv.port, timeout=30) as client:
                answers.append(client.sendmail("alice@customer.test", [SUPPORT], message(1)))

        sender = threading.Thread(target=send)
        sender.start()
        sender.join(0.5)
        assert sender.is_alive()  # still waiting for the lock, not refused
        other.execute("COMMIT")
        other.close()
        sender.join(30)
        assert answers == [{}]
    listener.close()
    assert len(rows(settings)) == 1
