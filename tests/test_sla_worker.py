"""The SLA check run by the worker: `worker --burst` on the embedded queue, and the
`check_sla` actor on a dramatiq broker (Redis)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailgate.core import config
from mailgate.db.models import Notice, SlaEvent, Ticket
from mailgate.db.store import Store
from mailgate.jobs.broker import forget_brokers
from mailgate.ops.worker import run_worker
from tests.mail import build
from tests.servers import require
from tests.web_support import Clock
from tests.worker_support import (
    mailgate,
    ready_store,
    unique_queue_name,
    wait_for,
    write_config,
)


def _desk(tmp_path: Path, broker: str = "embedded", queue_name: str = "mailgate") -> Path:
    """A config file with a one-hour first-response target and Ann on the support team."""
    return write_config(
        tmp_path / "mailgate.toml",
        f"sqlite:///{tmp_path / 'm.db'}",
        broker=broker,
        queue_name=queue_name,
        text=(
            f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n'
            "[sla]\ncheck_interval_seconds = 1\nfirst_response_minutes = { Normal = 60 }\n"
            '[[teams]]\nname = "support"\nassignment = "round_robin"\n'
            '[[agents]]\nemail = "ann@example.com"\nteams = ["support"]\n'
        ),
    )


def _age_tickets(path: Path, hours: int) -> None:
    """Move every ticket's creation back: the clock of a real subprocess cannot be moved."""
    store = Store(config.load(path, {}).database.url)
    with store.transaction() as session:
        for ticket in session.scalars(select(Ticket)):
            ticket.created_at -= timedelta(hours=hours)
    store.engine.dispose()


def test_worker_burst_sends_one_content_free_reminder(tmp_path: Path) -> None:
    """A real `mailgate worker --burst` fires the breach and mails Ann one reminder that
    names the ticket and the target, never the subject or the body; a second run, none."""
    path = _desk(tmp_path)
    (tmp_path / "m.eml").write_bytes(
        build(subject="Secret QZSUBJECT", body="Words QZBODY.\n", message_id="<q@acme.test>")
    )
    assert mailgate(path, "ingest", str(tmp_path / "m.eml")).returncode == 0
    before = set((tmp_path / "outbox").iterdir())
    assert mailgate(path, "worker", "--burst").returncode == 0
    assert set((tmp_path / "outbox").iterdir()) == before  # nothing due yet
    _age_tickets(path, hours=2)
    done = mailgate(path, "worker", "--burst")
    assert done.returncode == 0, done.stderr
    new = sorted(set((tmp_path / "outbox").iterdir()) - before)
    assert len(new) == 1
    raw = new[0].read_bytes()
    message = message_from_bytes(raw, policy=policy.default)
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "[#1] Reminder: first response overdue"
    assert message["Auto-Submitted"] == "auto-generated"
    text = " ".join(str(p.get_content()) for p in message.walk() if not p.is_multipart())
    assert "first-response target of ticket [#1] passed" in text
    assert b"QZSUBJECT" not in raw and b"QZBODY" not in raw and "QZ" not in text
    again = mailgate(path, "worker", "--burst")
    assert again.returncode == 0
    assert sorted(set((tmp_path / "outbox").iterdir()) - before) == new
    shown = json.loads(mailgate(path, "tickets", "show", "1", "--json").stdout)
    assert [e["kind"] for e in shown["sla_events"]] == ["first_response"]
    assert shown["first_response_due_at"] is not None


@pytest.mark.redis
def test_dramatiq_worker_runs_the_sla_actor(tmp_path: Path) -> None:
    """On Redis the worker's periodic pass enqueues the check_sla actor, which fires the
    breach and queues the reminder for the notice actor."""
    require("Redis", "127.0.0.1", 6379)
    import redis

    name = unique_queue_name()
    path = _desk(tmp_path, broker="redis://127.0.0.1:6379/0", queue_name=name)
    (tmp_path / "m.eml").write_bytes(build(message_id="<r@acme.test>"))
    settings = config.load(path, {})
    store = ready_store(settings)
    stop = threading.Event()
    try:
        assert mailgate(path, "ingest", str(tmp_path / "m.eml")).returncode == 0
        clock = Clock(datetime.now(UTC))
        worker = threading.Thread(
            target=run_worker,
            args=(settings,),
            kwargs={"threads": 2, "burst": False, "store": store, "now": clock, "stop": stop},
        )
        worker.start()

        def opened() -> int | None:
            with store.transaction() as session:
                return session.scalar(select(Ticket.id).where(Ticket.assignee_id.is_not(None)))

        wait_for(opened, timeout=30, what="the ticket, assigned")
        clock.advance(hours=2)

        def sent() -> list[str]:
            with store.transaction() as session:
                return list(
                    session.scalars(
                        select(Notice.state).where(
                            Notice.kind == "reminder", Notice.state == "sent"
                        )
                    )
                )

        assert wait_for(sent, timeout=30, what="the reminder to be sent") == ["sent"]
        stop.set()
        worker.join(60)
        with store.transaction() as session:
            assert session.scalar(select(func.count()).select_from(SlaEvent)) == 1
    finally:
        stop.set()
        store.engine.dispose()
        forget_brokers()
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(f"dramatiq:*{name}*"))
        if keys:
            client.delete(*keys)
        client.close()
