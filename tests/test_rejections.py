"""Refused mail counted per source and reason: receivers buffer, flush, and /metrics shows it."""

from __future__ import annotations

import smtplib
import urllib.request
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text

from mailgate.db import rejection_counts as rejections
from mailgate.db.models import Rejection
from mailgate.db.rejection_counts import RejectionCounter
from mailgate.db.store import Store
from mailgate.web.app import create_app
from tests.browser import listening_socket
from tests.browser import serving as serving_http
from tests.conftest import fixed_clock
from tests.smtp_support import (
    SUPPORT,
    RawClient,
    count,
    message,
    reading,
    serving,
    smtp_settings,
    wait_until,
)
from tests.web_support import portal_settings

DAY = date(2026, 1, 5)  # the day of tests.conftest.fixed_clock


def _written(settings) -> dict[tuple[str, str], int]:  # type: ignore[no-untyped-def]
    with reading(settings) as session:
        return rejections.totals(session)


def _scrape(db_url: str) -> dict[tuple[str, str], float]:
    """GET /metrics from a real portal on 127.0.0.1: mailgate_rejected_total by labels."""
    settings = portal_settings(db_url)
    store = Store(db_url)
    sock = listening_socket()
    port = sock.getsockname()[1]
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with (
            serving_http(create_app(settings, store), sock),
            urllib.request.urlopen(url, timeout=30) as r,
        ):
            body = r.read().decode()
    finally:
        sock.close()
        store.engine.dispose()
    return {
        (s.labels["source"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == "mailgate_rejected_total"
    }


def test_smtp_refusals_are_written_at_shutdown_and_scraped(tmp_path: Path) -> None:
    """Relay attempts, a bad address and an oversize message over real SMTP: nothing is
    written while the receiver runs (flush far away), everything when it stops, and
    /metrics over HTTP shows the exact counts. Accepted mail is not counted."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}", max_message_bytes=2000)
    big = message(body=("y" * 70 + "\r\n") * 60)
    with serving(settings, flush_seconds=3600) as srv:
        with smtplib.SMTP(srv.host, srv.port) as client:
            client.ehlo("c.test")
            client.mail("alice@customer.test")
            assert client.rcpt("victim@elsewhere.test")[0] == 550
            assert client.rcpt("other@example.org")[0] == 550
            assert client.rcpt(SUPPORT)[0] == 250
            assert client.data(message(1))[0] == 250
            client.mail("alice@customer.test")
            assert client.docmd("RCPT", "TO:<@@>")[0] == 553
            assert client.rcpt(SUPPORT)[0] == 250
            assert client.data(big)[0] == 552
        wait_until(lambda: srv.server.rejections.unwritten == 4, what="four refusals counted")
        assert _written(settings) == {}
    assert _written(settings) == {
        ("smtp", "relay_denied"): 2,
        ("smtp", "syntax"): 1,
        ("smtp", "too_big"): 1,
    }
    assert count(settings) == 1
    assert _scrape(settings.database.url) == {
        ("smtp", "relay_denied"): 2.0,
        ("smtp", "syntax"): 1.0,
        ("smtp", "too_big"): 1.0,
    }


def test_running_receiver_flushes_periodically_and_counts_connection_limits(
    tmp_path: Path,
) -> None:
    """With a short flush interval the counts reach the database while the receiver runs;
    a connection over smtp.max_connections_per_ip is refused with 421 and counted."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}", max_connections_per_ip=1)
    with serving(settings, flush_seconds=0.05) as srv:
        with RawClient(srv.host, srv.port) as first:
            assert first.reply()[0] == 220
            with RawClient(srv.host, srv.port) as second:
                assert second.reply()[0] == 421
        wait_until(lambda: _written(settings) == {("smtp", "client_limit"): 1}, what="a flush")
        with smtplib.SMTP(srv.host, srv.port) as client:
            client.ehlo("c.test")
            client.mail("alice@customer.test")
            assert client.rcpt("victim@elsewhere.test")[0] == 550
        wait_until(lambda: ("smtp", "relay_denied") in _written(settings), what="a second flush")
    assert _written(settings) == {("smtp", "client_limit"): 1, ("smtp", "relay_denied"): 1}


def test_flushes_add_up_per_day_on_both_databases(store: Store) -> None:
    """Each flush adds to the (source, reason, day) row; a new day starts a new row."""
    moment = [datetime(2026, 1, 5, 23, 59, tzinfo=UTC)]
    counter = RejectionCounter("smtp", lambda: moment[0])
    for _ in range(3):
        counter.add("relay_denied")
    assert counter.flush(store) == 3
    counter.add("relay_denied", 2)
    counter.add("too_big")
    moment[0] = datetime(2026, 1, 6, 0, 1, tzinfo=UTC)
    counter.add("relay_denied")
    assert counter.flush(store) == 4 and counter.flush(store) == 0
    with store.transaction() as session:
        rows = {(r.reason, r.day): r.count for r in session.scalars(select(Rejection))}
        assert rows == {
            ("relay_denied", DAY): 5,
            ("too_big", DAY): 1,
            ("relay_denied", date(2026, 1, 6)): 1,
        }
        assert rejections.totals(session) == {("smtp", "relay_denied"): 6, ("smtp", "too_big"): 1}
        assert rejections.summary(session, date(2026, 1, 6)) == {
            "total": 1,
            "by_source": {"smtp": 1},
            "by_reason": {"relay_denied": 1},
        }


def test_a_failed_flush_keeps_the_counts(tmp_path: Path) -> None:
    """The database refusing the write loses nothing: the next flush writes it all."""
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    store.upgrade()
    counter = RejectionCounter("smtp", fixed_clock())
    counter.add("too_big")
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE rejections RENAME TO rejections_away"))
    with pytest.raises(Exception, match="rejections"):
        counter.flush(store)
    counter.add("too_big")
    counter.flush_quietly(store)  # logs, keeps
    assert counter.unwritten == 2
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE rejections_away RENAME TO rejections"))
    assert counter.flush(store) == 2 and counter.unwritten == 0
    with store.transaction() as session:
        assert rejections.totals(session) == {("smtp", "too_big"): 2}
    store.engine.dispose()


def test_unknown_reason_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown rejection reason 'nope'"):
        RejectionCounter("smtp", fixed_clock()).add("nope")


def test_ingest_refusals_are_counted(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`mailgate ingest` exiting 65 counts why; an mbox's refusals are counted in one go."""
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"just some words\n")
    assert cli("ingest", str(junk)).exit_code == 65
    assert cli("ingest", "-", input=b"").exit_code == 65
    assert cli("ingest", str(tmp_path / "missing.eml")).exit_code == 65  # not mail: not counted
    mbox = tmp_path / "box.mbox"
    mbox.write_bytes(b"From x@y Mon Jan  5 09:30:00 2026\njust words\n")
    assert cli("ingest", "--mbox", str(mbox)).exit_code == 65
    import json

    result = json.loads(cli("stats", "--json").output)["rejected"]
    assert result == {
        "total": 3,
        "by_source": {"ingest": 3},
        "by_reason": {"not_an_email": 3},
    }
    assert "refused mail    3 (not_an_email 3)" in cli("stats").output
    assert Counter(result["by_reason"]) == Counter(not_an_email=3)
