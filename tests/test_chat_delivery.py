"""Chat notices POSTed to real HTTP servers on 127.0.0.1 playing Slack, Mattermost, Teams
and a plain receiver: the right JSON, each notice delivered once through 429s and 5xx,
4xx and configuration problems failed with a reason that never holds the URL."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from mailgate.core.chat_payloads import ChatLine, chat_payload
from mailgate.core.settings import ChatChannelSetting, Settings
from mailgate.db.store import Store
from mailgate.outbound import chat_transport, delivery, sender
from mailgate.outbound.sender import send_pending
from tests.chat_receiver import Receiver, Reply, receiving
from tests.chat_support import MARKER, T0, add_notice, notice, open_ticket, with_channels
from tests.conftest import fixed_clock
from tests.ports import free_port

TOKEN = "s3cr3tt0k3n"  # in every receiver URL's path, as in Slack's and Teams' URLs


def _chat(kind: str, env: str = "ACME_CHAT_URL") -> ChatChannelSetting:
    return ChatChannelSetting(kind=kind, url_env=env, name="acme-chat")


@pytest.mark.parametrize("service", ["slack", "mattermost", "teams", "webhook"])
def test_each_service_gets_its_json(
    store: Store,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    service: str,
) -> None:
    number = open_ticket(store, settings)
    s = with_channels(settings, tmp_path, _chat(service))
    notice_id = add_notice(store, channel="acme-chat", detail={"status": "Waiting"})
    with receiving(Receiver()) as receiver:
        monkeypatch.setenv("ACME_CHAT_URL", receiver.url())
        report = send_pending(store, settings=s, now=fixed_clock(T0))
    assert (report.sent, report.failed) == (2, 0)  # the mail acknowledgement and the chat one
    (post,) = receiver.posts
    assert post.path == f"/hooks/T0001/B0002/{TOKEN}"
    assert post.headers["content-type"] == "application/json"
    line = ChatLine(
        kind="agent_replied",
        text=f"[#{number}] New reply to your request",
        link=s.ticket_url(number),
        number=number,
        reference=f"[#{number}]",
        words={"status": "Waiting"},
        notice_id=notice_id,
    )
    assert post.json() == chat_payload(service, line)
    row = notice(store, notice_id)
    assert (row.state, row.attempts, row.last_error) == ("sent", 1, "")
    assert MARKER.encode() not in post.body


def test_channel_language_picks_the_template(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, _chat("mattermost"))
    add_notice(store, channel="acme-chat", kind="status_changed", language="fr")
    with receiving(Receiver()) as receiver:
        monkeypatch.setenv("ACME_CHAT_URL", receiver.url())
        send_pending(store, settings=s, now=fixed_clock(T0))
    text = receiver.posts[0].json()["text"]
    assert text.startswith("[#1](") and "Open" in text and "Status changed" not in text


def test_429_then_500_then_200_delivers_once(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """429 waits for Retry-After (later than the backoff), 500 for the backoff; the
    notice goes once, and nothing is sent before its time or after it went."""
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, _chat("slack"))
    notice_id = add_notice(store, channel="acme-chat")
    replies = (Reply(429, "rate_limited", {"Retry-After": "300"}), Reply(500, "oops"), Reply(200))
    with receiving(Receiver(*replies)) as receiver:
        monkeypatch.setenv("ACME_CHAT_URL", receiver.url())

        def at(seconds: int) -> sender.SendReport:
            return send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(seconds=seconds)))

        at(0)
        row = notice(store, notice_id)
        assert (row.state, row.attempts) == ("pending", 1)
        assert row.next_attempt_at == T0 + timedelta(seconds=300)  # not the 60 s backoff
        assert "HTTP 429" in row.last_error and "rate_limited" in row.last_error
        assert at(299).sent == 0 and len(receiver.posts) == 1
        at(300)
        row = notice(store, notice_id)
        assert (row.state, row.attempts) == ("pending", 2) and "HTTP 500" in row.last_error
        assert row.next_attempt_at == T0 + timedelta(seconds=300 + 120)
        assert at(419).sent == 0 and len(receiver.posts) == 2
        assert at(420).sent == 1
        assert at(86_400).sent == 0
    assert len(receiver.posts) == 3
    assert len({p.body for p in receiver.posts}) == 1  # the same message each time
    row = notice(store, notice_id)
    assert (row.state, row.attempts, row.sent_at) == ("sent", 3, T0 + timedelta(seconds=420))


def test_retry_after_shorter_than_the_backoff_waits_for_the_backoff(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, _chat("slack"))
    notice_id = add_notice(store, channel="acme-chat")
    with receiving(Receiver(Reply(429, "", {"Retry-After": "1"}))) as receiver:
        monkeypatch.setenv("ACME_CHAT_URL", receiver.url())
        send_pending(store, settings=s, now=fixed_clock(T0))
    assert notice(store, notice_id).next_attempt_at == T0 + timedelta(seconds=60)


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (404, "no_service", "HTTP 404 Not Found: no_service"),
        (400, f"Cannot POST /hooks/T0001/B0002/{TOKEN}", "HTTP 400 Bad Request: Cannot POST …"),
        (403, "", "HTTP 403 Forbidden"),
        (302, "", "HTTP 302 Found: the URL redirects; configure the URL it points to"),
    ],
)
def test_refusal_fails_at_once_with_a_reason_without_the_url(
    store: Store,
    settings: Settings,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: str,
    reason: str,
) -> None:
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, _chat("mattermost"))
    notice_id = add_notice(store, channel="acme-chat")
    reply = Reply(status, body, {"Location": "https://elsewhere.test/"} if status == 302 else {})
    with caplog.at_level(logging.DEBUG), receiving(Receiver(reply)) as receiver:
        monkeypatch.setenv("ACME_CHAT_URL", receiver.url())
        first = send_pending(store, settings=s, now=fixed_clock(T0))
        later = send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(days=1)))
    row = notice(store, notice_id)
    assert (first.failed, later.sent, len(receiver.posts)) == (1, 0, 1)
    assert (row.state, row.last_error) == ("failed", reason)
    assert TOKEN not in caplog.text and "/hooks/" not in caplog.text


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (None, "$ACME_CHAT_URL is not set (the URL is read from it)"),
        ("", "$ACME_CHAT_URL is not set (the URL is read from it)"),
        (f"http://chat.example.com/hooks/{TOKEN}", "$ACME_CHAT_URL is http:// to another machine"),
        (f"hooks.example.com/{TOKEN}", "$ACME_CHAT_URL is not an https:// URL"),
    ],
)
def test_unusable_variable_fails_naming_it_not_its_value(
    store: Store,
    settings: Settings,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: str | None,
    reason: str,
) -> None:
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, _chat("slack"))
    notice_id = add_notice(store, channel="acme-chat")
    if env is None:
        monkeypatch.delenv("ACME_CHAT_URL", raising=False)
    else:
        monkeypatch.setenv("ACME_CHAT_URL", env)
    send_pending(store, settings=s, now=fixed_clock(T0))
    row = notice(store, notice_id)
    assert row.state == "failed" and row.last_error.startswith(reason)
    assert TOKEN not in row.last_error


def test_channel_gone_from_the_config_fails(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    open_ticket(store, settings)
    notice_id = add_notice(store, channel="old-room")
    send_pending(store, settings=with_channels(settings, tmp_path), now=fixed_clock(T0))
    row = notice(store, notice_id)
    assert (row.state, row.last_error) == (
        "failed",
        "chat channel 'old-room' is not in the configuration",
    )


def test_down_then_up_is_retried_and_sent_once(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, _chat("teams"))
    notice_id = add_notice(store, channel="acme-chat")
    port = free_port()
    monkeypatch.setenv("ACME_CHAT_URL", f"http://127.0.0.1:{port}/workflows/{TOKEN}")
    down = send_pending(store, settings=s, now=fixed_clock(T0))
    row = notice(store, notice_id)
    assert down.retrying == 1 and row.state == "pending"
    assert row.last_error.startswith(f"TemporaryFailure: http://127.0.0.1:{port} unreachable")
    assert TOKEN not in row.last_error
    with receiving(Receiver(), port) as receiver:
        send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(minutes=1)))
        send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(hours=1)))
    assert len(receiver.posts) == 1 and notice(store, notice_id).state == "sent"


def test_too_slow_a_service_is_retried(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No answer within the timeout: retried later (the service may have acted on it:
    a plain chat message may then show twice, a webhook receiver drops the repeat)."""
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, _chat("slack"))
    notice_id = add_notice(store, channel="acme-chat")
    monkeypatch.setattr(chat_transport, "TIMEOUT_SECONDS", 0.3)
    with receiving(Receiver(Reply(200, delay=1.0))) as receiver:
        monkeypatch.setenv("ACME_CHAT_URL", receiver.url())
        report = send_pending(store, settings=s, now=fixed_clock(T0))
        again = send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(minutes=1)))
    row = notice(store, notice_id)
    assert (report.retrying, again.sent, row.state, row.attempts) == (1, 1, "sent", 2)
    assert len(receiver.posts) == 2


def test_gives_up_after_max_attempts(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, _chat("slack"))
    notice_id = add_notice(store, channel="acme-chat")
    with receiving(Receiver(*[Reply(503)] * 20)) as receiver:
        monkeypatch.setenv("ACME_CHAT_URL", receiver.url())
        for day in range(15):
            send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(days=day)))
    row = notice(store, notice_id)
    assert row.state == "failed" and row.last_error.startswith("gave up after 12 attempts")
    assert len(receiver.posts) == 12


class Crash(BaseException):
    """The process dying between the POST and the commit."""


def test_crash_before_commit_sends_again_the_same_message(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim is undone with the transaction: the row is still pending, and the
    second POST is the same message (receivers drop a repeat by its id)."""
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, _chat("webhook"))
    notice_id = add_notice(store, channel="acme-chat")
    with receiving(Receiver()) as receiver:
        monkeypatch.setenv("ACME_CHAT_URL", receiver.url())
        with monkeypatch.context() as m:

            def crash(*args: object) -> None:
                if " to acme-chat" in args:  # the chat notice's "sent" line, not the mail's
                    raise Crash

            m.setattr(delivery.log, "info", crash)
            with pytest.raises(Crash):
                send_pending(store, settings=s, now=fixed_clock(T0))
        row = notice(store, notice_id)
        assert (row.state, row.attempts) == ("pending", 0)
        send_pending(store, settings=s, now=fixed_clock(T0))
    first, second = receiver.posts
    assert first.body == second.body and first.json()["id"] == notice_id


def test_a_batch_of_mail_and_chat_sends_each_once(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file outbox takes mail in batches; chat rows among them are POSTed one by
    one, each in its own transaction, and counted once."""
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, _chat("webhook"))
    chat_ids = [add_notice(store, channel="acme-chat") for _ in range(3)]
    with receiving(Receiver()) as receiver:
        monkeypatch.setenv("ACME_CHAT_URL", receiver.url())
        report = send_pending(store, settings=s, now=fixed_clock(T0))
        again = send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(days=1)))
    assert (report.sent, report.skipped, again.sent) == (4, 0, 0)
    assert sorted(p.json()["id"] for p in receiver.posts) == chat_ids
    assert all(notice(store, i).state == "sent" for i in chat_ids)
    assert list((tmp_path / "outbox").glob("notice-*.eml")) == [
        tmp_path / "outbox" / "notice-1.eml"
    ]
