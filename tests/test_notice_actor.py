"""The notice actor on a real dramatiq Worker: a refused sender's notice is written by
processing, queued after commit and handed to the outbound sender by id."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from mailgate.core import config
from mailgate.db.models import InboundMessage, Notice
from mailgate.inbound.intake import Envelope, accept
from mailgate.jobs import enqueue_inbound
from mailgate.jobs.actors import declare_actors
from mailgate.jobs.broker import forget_brokers, make_broker, queue_names
from mailgate.jobs.tasks import Runtime
from mailgate.ops.worker import run_worker
from tests.faults.support import free_port
from tests.servers import require
from tests.worker_support import mail, ready_store, unique_queue_name, write_config


@pytest.mark.redis
def test_refusal_notice_goes_through_the_notice_actor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Processing refuses a stranger, the worker queues the notice, the sender delivers it once."""
    require("Redis", "127.0.0.1", 6379)
    import redis

    outbox = tmp_path / "outbox"
    name = unique_queue_name()
    path = write_config(
        tmp_path / "mailgate.toml",
        f"sqlite:///{tmp_path / 'm.db'}",
        broker="redis://127.0.0.1:6379/0",
        queue_name=name,
        text=f'[intake]\npolicy = "known"\n[outbound]\nfolder = "{outbox}"\n',
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
            # The file transport names each file by notice id: one delivery, this one.
            assert [f.name for f in outbox.iterdir()] == [f"notice-{notice.id}.eml"]
    finally:
        store.engine.dispose()
        forget_brokers()
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(f"dramatiq:*{name}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_processed_message_leaves_its_notice_to_the_reconciler_when_the_broker_is_down(
    tmp_path: Path,
) -> None:
    """The inbound actor commits the ticket, then cannot queue the acknowledgement: it
    returns normally (no failed job, no traceback) and the notice stays pending."""
    pytest.importorskip("redis")
    nobody = free_port()  # nothing listens here: a broker that is down
    path = write_config(
        tmp_path / "mailgate.toml",
        f"sqlite:///{tmp_path / 'm.db'}",
        broker=f"redis://127.0.0.1:{nobody}/0",
        text=f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n',
    )
    settings = config.load(path, {})
    store = ready_store(settings)
    broker = make_broker(settings)
    try:
        inbound_id = accept(
            store, mail(), source="smtp", envelope=Envelope(), max_bytes=10**6, now=datetime.now
        ).inbound_id
        process_inbound, *_ = declare_actors(
            broker, Runtime(store, settings, datetime.now), queue_names(settings)
        )
        process_inbound(inbound_id)
        with store.transaction() as session:
            row = session.get(InboundMessage, inbound_id)
            notice = session.scalar(select(Notice))
            assert row is not None and (row.state, row.outcome) == ("processed", "new_ticket")
            assert notice is not None and (notice.kind, notice.state) == (
                "acknowledgement",
                "pending",
            )
    finally:
        broker.close()
        store.engine.dispose()


@pytest.mark.redis
def test_notices_the_api_writes_reach_the_broker_as_they_commit(tmp_path: Path) -> None:
    """A ticket opened through the API: its acknowledgement is queued when the request's
    transaction commits, so a worker sends it at once (the reconciler would only find it
    after queue.reconcile_after_seconds)."""
    require("Redis", "127.0.0.1", 6379)
    import redis
    from starlette.testclient import TestClient

    from mailgate.web import api_tokens
    from mailgate.web.app import create_app

    outbox = tmp_path / "outbox"
    name = unique_queue_name()
    path = write_config(
        tmp_path / "mailgate.toml",
        f"sqlite:///{tmp_path / 'm.db'}",
        broker="redis://127.0.0.1:6379/0",
        queue_name=name,
        text=f'[outbound]\nfolder = "{outbox}"\n',
    )
    settings = config.load(path, {})
    store = ready_store(settings)
    try:
        with store.transaction() as session:
            token = api_tokens.add(session, "crm", datetime.now())
        created = TestClient(create_app(settings, store)).post(
            "/api/tickets",
            headers={"Authorization": f"Bearer {token}"},
            json={"requester": "zoe@customer.test", "subject": "Hello", "body": "Hi."},
        )
        assert created.status_code == 201, created.text
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        queued = client.hlen(f"dramatiq:{queue_names(settings).notices}.msgs")
        client.close()
        assert queued == 1  # on the broker already, before any worker or reconciler ran
        run_worker(settings, threads=2, burst=True, store=store)
        with store.transaction() as session:
            notice = session.scalars(select(Notice)).one()
            assert (notice.kind, notice.state) == ("acknowledgement", "sent")
        assert [f.name for f in outbox.iterdir()] == [f"notice-{notice.id}.eml"]
    finally:
        store.engine.dispose()
        forget_brokers()
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(f"dramatiq:*{name}*"))
        if keys:
            client.delete(*keys)
        client.close()
