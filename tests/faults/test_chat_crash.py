"""Issue 24 in the fault suite: a chat channel and a signed webhook whose receiver is
down while `mailgate worker --burst` is SIGKILLed at seeded points, then the receiver
comes up; every chat and webhook row reaches it exactly once, and the mail ledger of
test_crash_ledger holds (nothing lost, nothing doubled)."""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailgate.core import config as mailgate_config
from mailgate.core.states import NoticeState
from mailgate.db.models import Notice
from mailgate.inbound.intake import Envelope, accept
from tests.chat_receiver import Receiver, receiving
from tests.faults.load import load_message
from tests.faults.support import (
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

CHAT = "acme-webhook"  # the name `chat = [{ kind = "webhook" }]` on account "Acme" gets
HOOK = "crm"
SECRET = "fault-suite-signing-secret"
# The load's senders are c<n>@customer.test: account Acme owns the domain, so each new
# ticket's acknowledgement goes to its chat channel too. chat_max_per_hour is raised so
# that the full scale (more than 60 tickets in the hour) suppresses nothing.
CHANNELS = f"""[outbound]
chat_max_per_hour = 100000
[[customers]]
name = "Acme"
domains = ["customer.test"]
chat = [{{ kind = "webhook", url_env = "FAULT_CHAT_URL" }}]
[[webhooks]]
name = "{HOOK}"
events = ["*"]
url_env = "FAULT_HOOK_URL"
secret_env = "FAULT_HOOK_SECRET"
"""


def _channel_rows(conn: sa.Connection) -> dict[int, tuple[int | None, str, str, str, int]]:
    """Every chat and webhook row: id → (ticket, kind, channel, state, attempts)."""
    found = conn.execute(
        sa.text(
            "SELECT id, ticket_id, kind, channel, state, attempts FROM notices "
            "WHERE channel <> '' ORDER BY id"
        )
    )
    return {int(i): (t, k, c, s, int(a)) for i, t, k, c, s, a in found}


def test_receiver_down_while_worker_sigkilled_gets_each_row_once(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    total = scaled(40, 400)
    hook_port = free_port()  # nothing listens here until the receiver starts
    # The subprocesses' environment is os.environ (support._env), so the URLs and the
    # secret are set here: never in the config file, as for an operator.
    monkeypatch.setenv("FAULT_CHAT_URL", f"http://127.0.0.1:{hook_port}/chat/t0k3n")
    monkeypatch.setenv("FAULT_HOOK_URL", f"http://127.0.0.1:{hook_port}/hooks/{HOOK}")
    monkeypatch.setenv("FAULT_HOOK_SECRET", SECRET)
    config = write_config(tmp_path, port=free_port(), db_url=db_url, extra=CHANNELS)
    settings = mailgate_config.load(config, {})
    store = ready_store(settings)
    messages = [load_message(f"c{seed}", n) for n in range(total)]
    mids = {mid for mid, _ in messages}
    engine = sa.create_engine(db_url)
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

        def progress() -> int:
            """Mail processed plus chat and webhook rows tried at least once: a worker
            processes the mail first, then POSTs (to nothing, refused) what it wrote."""
            with engine.connect() as conn:
                processed = conn.scalar(
                    sa.text("SELECT count(*) FROM inbound_messages WHERE state <> 'received'")
                )
                tried = conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM notices WHERE channel <> '' "
                        "AND (attempts > 0 OR state <> 'pending')"
                    )
                )
            return int(processed or 0) + int(tried or 0)

        # At least one acknowledgement and one ticket.created per message: 3 x total work
        # items, of which the last 2 x total are delivery attempts. One kill is always
        # among those, the others anywhere.
        kills = rng.randint(scaled(3, 8), scaled(4, 12))
        span = range(5, 3 * total - 5)
        delivering = rng.randrange(total + 5, 3 * total - 5)
        kill_at = sorted([delivering, *rng.sample(span, kills - 1)])
        started = time.monotonic()
        # Each kill lands inside a transaction, or a POST.
        at_kill = kill_bursts_at(config, tmp_path, kill_at, progress, rng)
        # The last burst before the receiver is up: every row tried (and refused).
        down = run_mailgate(config, "worker", "--burst")
        assert down.returncode == 0, down.stderr
        with engine.connect() as conn:
            before = _channel_rows(conn)
        assert before and all(s == "pending" and a >= 1 for *_, s, a in before.values()), before
        refused = sum(a for *_, a in before.values())

        with receiving(Receiver(), hook_port) as receiver:
            # Recovery: the refused rows wait out their backoff (next_attempt_at, 1 min
            # and more) and `mailgate worker` has no clock to move forward (only
            # `sla check --now` has one), so the wait is skipped by making them due now,
            # exactly what the passing of time does to the due query. Only
            # next_attempt_at changes: state and attempts, the claim, are untouched.
            with store.transaction() as session:
                session.execute(
                    sa.update(Notice)
                    .where(Notice.channel != "", Notice.state == NoticeState.PENDING)
                    .values(next_attempt_at=datetime.now(UTC))
                )
            up = run_mailgate(config, "worker", "--burst")
            assert up.returncode == 0, up.stderr
            requests = list(receiver.requests)
        with engine.connect() as conn:
            after = _channel_rows(conn)
            tickets = {
                int(t)
                for (t,) in conn.execute(sa.text("SELECT DISTINCT ticket_id FROM ticket_messages"))
            }
    finally:
        store.engine.dispose()
        engine.dispose()

    ledger = read_ledger(db_url, mids)
    chat_got = Counter(r.json()["id"] for r in requests if r.path.startswith("/chat/"))
    hook_got = Counter(
        int(r.headers["mailgate-delivery"]) for r in requests if r.path == f"/hooks/{HOOK}"
    )
    chat_rows = {i for i, (_, _, c, _, _) in after.items() if c == CHAT}
    hook_rows = {i for i, (_, _, c, _, _) in after.items() if c == HOOK}
    print(
        f"chat crash ({db_url.partition(':')[0]}): seed={seed} sent={total} kills={kills} "
        f"at={kill_at} progress_at_kill={at_kill} rows={len(after)} chat_rows={len(chat_rows)} "
        f"webhook_rows={len(hook_rows)} kinds={dict(Counter(k for _, k, *_ in after.values()))} "
        f"refused_attempts={refused} requests={len(requests)} "
        f"states={dict(Counter(s for *_, s, _ in after.values()))} "
        f"outcomes={ledger.outcomes()} duplicates={len(ledger.doubled)} lost={len(ledger.lost)} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    # The mail: nothing lost, nothing doubled, every message finished once.
    assert not ledger.lost
    assert not ledger.doubled
    assert not ledger.unfinished
    assert all(len(found) == 1 for found in ledger.rows.values())
    # Every chat and webhook row sent, and each received exactly once: the rows the
    # database holds are exactly the ids the receiver got.
    assert {i: s for i, (*_, s, _) in after.items() if s != "sent"} == {}
    assert set(after) == chat_rows | hook_rows
    assert {i: n for i, n in (chat_got + hook_got).items() if n != 1} == {}
    assert set(chat_got) == chat_rows
    assert set(hook_got) == hook_rows
    assert len(requests) == len(after)
    # One committed attempt per row after recovery, for the one request it made.
    assert {i: (before[i][4], a) for i, (*_, a) in after.items() if a != before[i][4] + 1} == {}
    # What the mail causes: one acknowledgement in the account's channel and one
    # ticket.created delivery per ticket; anything else the events produce is allowed
    # (the set equality above covers it), but no event twice for a ticket.
    assert len(tickets) == total
    acknowledged = Counter(
        t for t, k, c, _, _ in after.values() if (c, k) == (CHAT, "acknowledgement")
    )
    assert acknowledged == Counter(dict.fromkeys(tickets, 1))
    hooks = [r for r in requests if r.path == f"/hooks/{HOOK}"]
    events = Counter(
        (after[int(r.headers["mailgate-delivery"])][0], r.json()["event"]) for r in hooks
    )
    assert {key: n for key, n in events.items() if n > 1} == {}
    assert {t for t, event in events if event == "ticket.created"} == tickets
    # Each webhook request is signed as docs/chat.md says, and carries its delivery id.
    for r in hooks:
        fields = dict(part.split("=", 1) for part in r.headers["mailgate-signature"].split(","))
        signed = f"{fields['t']}.".encode() + r.body
        expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, fields["v1"])
        assert r.json()["id"] == int(r.headers["mailgate-delivery"])
