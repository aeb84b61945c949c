"""The notice actor on a real dramatiq Worker: a refused sender's notice is written by
processing, queued after commit and handed to the outbound sender by id."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from mailgate import config
from mailgate.inbound.intake import Envelope, accept
from mailgate.jobs import enqueue_inbound
from mailgate.jobs.broker import forget_brokers
from mailgate.jobs.worker import run_worker
from mailgate.models import InboundMessage, Notice
from mailgate.store import Store
from tests.servers import require
from tests.worker_support import mail, ready_store, unique_queue_name, write_config


def _fake_sender(calls: list[tuple[Any, ...]]) -> types.ModuleType:
    """A stand-in for the outbound sender (another branch): marks the row sent."""
    module = types.ModuleType("mailgate.outbound.sender")
    module.__spec__ = importlib.machinery.ModuleSpec("mailgate.outbound.sender", None)

    def send_notice(
        store: Store, notice_id: int, *, settings: Any, now: Callable[[], datetime]
    ) -> None:
        # Claim the row atomically, as a real sender must: two jobs may race for it.
        with store.transaction() as session:
            claimed = session.execute(
                update(Notice)
                .where(Notice.id == notice_id, Notice.state == "pending")
                .values(state="sent", sent_at=now())
            ).rowcount
        if claimed:
            calls.append((notice_id, settings.queue.name))

    module.send_notice = send_notice  # type: ignore[attr-defined]
    return module


@pytest.mark.redis
def test_refusal_notice_goes_through_the_notice_actor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Processing refuses a stranger, the worker queues the notice, the sender gets its id."""
    require("Redis", "127.0.0.1", 6379)
    import redis

    calls: list[tuple[Any, ...]] = []
    package = types.ModuleType("mailgate.outbound")
    package.__path__ = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mailgate.outbound", package)
    monkeypatch.setitem(sys.modules, "mailgate.outbound.sender", _fake_sender(calls))
    name = unique_queue_name()
    path = write_config(
        tmp_path / "mailgate.toml",
        f"sqlite:///{tmp_path / 'm.db'}",
        broker="redis://127.0.0.1:6379/0",
        queue_name=name,
        text='[intake]\npolicy = "known"\n',
    )
    settings = config.load(path, {})
    store = ready_store(settings)
    try:
        inbound_id = accept(
            store,
            mail(sender="x@nowhere.test"),
            source="smtp",
            envelope=Envelope(),
            max_bytes=10**6,
            now=datetime.now,
        ).inbound_id
        assert enqueue_inbound(settings, inbound_id)
        run_worker(settings, threads=2, burst=True, store=store)
        with store.transaction() as session:
            row = session.get(InboundMessage, inbound_id)
            notice = session.scalar(select(Notice))
            assert row is not None and row.outcome == "refused_policy"
            assert notice is not None and (notice.kind, notice.state) == ("intake_refused", "sent")
            assert calls == [(notice.id, name)]
    finally:
        store.engine.dispose()
        forget_brokers()
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(f"dramatiq:*{name}*"))
        if keys:
            client.delete(*keys)
        client.close()
