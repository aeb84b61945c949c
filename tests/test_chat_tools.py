"""The operator's tools for chat channels and webhooks: `notices list` shows the channel,
`notices test-channel` sends a harmless message at once, `doctor` checks the variables
and URLs (and with --network connects, sending nothing), and /metrics counts the rows."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from starlette.testclient import TestClient

from mailgate.core.chat_payloads import TEST_MESSAGE, chat_payload, check_line
from mailgate.core.settings import ChatChannelSetting, CustomerSetting, Settings
from mailgate.db.models import Notice
from tests.builders import build
from tests.chat_receiver import Receiver, Reply, receiving
from tests.chat_support import add_notice
from tests.ports import free_port
from tests.test_webhooks import SECRET, verify
from tests.web_support import make_site

CHANNELS = """
[[customers]]
name = "Acme"
domains = ["customer.test"]
chat = [{ kind = "slack", url_env = "ACME_SLACK_URL" }]
[[webhooks]]
name = "crm"
events = ["*"]
url_env = "CRM_URL"
secret_env = "CRM_SECRET"
"""
TOKEN = "s3cr3tt0k3n"

Cli = Callable[..., Result]


@pytest.fixture
def cli_with_channels(cli: Cli, tmp_path: Path) -> Cli:
    config = tmp_path / "mailgate.toml"
    config.write_text(config.read_text() + CHANNELS)
    return cli


def test_notices_list_shows_each_rows_channel(
    cli_with_channels: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mail from Acme: the mail acknowledgement ("-"), the Slack one and the webhook;
    the variables are not set, so the chat rows failed saying which one."""
    monkeypatch.delenv("ACME_SLACK_URL", raising=False)
    monkeypatch.delenv("CRM_URL", raising=False)
    (tmp_path / "in.eml").write_bytes(build(sender="alice@customer.test"))
    assert cli_with_channels("ingest", str(tmp_path / "in.eml")).exit_code == 0
    rows = json.loads(cli_with_channels("notices", "list", "--json").output)
    assert [(r["kind"], r["channel"], r["recipient"], r["state"]) for r in rows] == [
        ("webhook", "crm", "webhook:crm", "failed"),
        ("acknowledgement", "acme-slack", "chat:acme-slack", "failed"),
        ("acknowledgement", "", "alice@customer.test", "sent"),
    ]
    assert rows[1]["last_error"] == "$ACME_SLACK_URL is not set (the URL is read from it)"
    table = cli_with_channels("notices", "list").output.splitlines()
    assert table[0].split()[:4] == ["ID", "TICKET", "KIND", "CHANNEL"]
    assert [line.split()[3] for line in table[1:]] == ["crm", "acme-slack", "-"]


def test_test_channel_posts_the_test_message(
    cli_with_channels: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with receiving(Receiver()) as receiver:
        monkeypatch.setenv("ACME_SLACK_URL", receiver.url())
        result = cli_with_channels("notices", "test-channel", "acme-slack")
    assert result.exit_code == 0, result.output
    assert result.output == "acme-slack: HTTP 200, test message sent\n"
    (post,) = receiver.posts
    assert post.json() == chat_payload("slack", check_line("http://127.0.0.1:8080/"))
    assert TEST_MESSAGE in post.json()["text"]


def test_test_channel_signs_a_webhooks_test_event(
    cli_with_channels: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with receiving(Receiver(Reply(202, ""))) as receiver:
        monkeypatch.setenv("CRM_URL", receiver.url())
        monkeypatch.setenv("CRM_SECRET", SECRET)
        result = cli_with_channels("notices", "test-channel", "crm")
    assert result.exit_code == 0 and "HTTP 202" in result.output
    (post,) = receiver.posts
    body = post.json()
    assert (body["event"], body["text"]) == ("test", TEST_MESSAGE)
    t = int(post.headers["mailgate-signature"].split(",")[0].removeprefix("t="))
    assert verify(post.headers, post.body, SECRET, datetime.fromtimestamp(t, UTC)) == body["id"]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("unknown", "no chat channel or webhook named 'nope' (known: acme-slack, crm)"),
        ("unset", "test message to acme-slack failed: $ACME_SLACK_URL is not set"),
        ("refused", "test message to acme-slack failed: HTTP 404 Not Found: no_service"),
        ("down", "test message to acme-slack failed: http://127.0.0.1:"),
    ],
)
def test_test_channel_failures_exit_1_with_a_clear_message(
    cli_with_channels: Cli, monkeypatch: pytest.MonkeyPatch, setup: str, expected: str
) -> None:
    monkeypatch.delenv("ACME_SLACK_URL", raising=False)
    with receiving(Receiver(Reply(404, "no_service"))) as receiver:
        if setup in ("refused", "unknown"):
            monkeypatch.setenv("ACME_SLACK_URL", receiver.url())
        if setup == "down":
            monkeypatch.setenv("ACME_SLACK_URL", f"http://127.0.0.1:{free_port()}/{TOKEN}")
        result = cli_with_channels(
            "notices", "test-channel", "nope" if setup == "unknown" else "acme-slack"
        )
    assert result.exit_code == 1
    assert expected in result.output
    assert TOKEN not in result.output


def _doctor(cli: Cli, *args: str) -> tuple[int, dict[str, str]]:
    result = cli("doctor", *args)
    found = {
        line[6:].split(":", 1)[0]: line
        for line in result.output.splitlines()
        if line[6:].startswith(("chat ", "webhook "))
    }
    return result.exit_code, found


def test_doctor_checks_variables_and_urls_without_the_network(
    cli_with_channels: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set and https: ok, and nothing is contacted (the host does not even exist)."""
    monkeypatch.setenv("ACME_SLACK_URL", f"https://hooks.slack.invalid/services/{TOKEN}")
    monkeypatch.setenv("CRM_URL", f"https://crm.invalid/hooks/{TOKEN}")
    monkeypatch.setenv("CRM_SECRET", SECRET)
    code, found = _doctor(cli_with_channels)
    assert found == {
        "chat acme-slack": "ok    chat acme-slack: slack, $ACME_SLACK_URL is https://hooks.slack.invalid",
        "webhook crm": "ok    webhook crm: signed_webhook, $CRM_URL is https://crm.invalid, $CRM_SECRET set",
    }
    assert code == 0


@pytest.mark.parametrize(
    ("slack_url", "secret", "slack_says", "crm_says"),
    [
        (None, SECRET, "$ACME_SLACK_URL is not set", "ok"),
        (f"http://chat.example.com/{TOKEN}", None, "is http:// to another machine", "$CRM_SECRET"),
    ],
)
def test_doctor_names_each_problem_and_exits_1(
    cli_with_channels: Cli,
    monkeypatch: pytest.MonkeyPatch,
    *,
    slack_url: str | None,
    secret: str | None,
    slack_says: str,
    crm_says: str,
) -> None:
    for name, value in (
        ("ACME_SLACK_URL", slack_url),
        ("CRM_SECRET", secret),
        ("CRM_URL", "https://crm.invalid/x"),
    ):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    code, found = _doctor(cli_with_channels)
    assert code == 1
    assert found["chat acme-slack"].startswith("FAIL") and slack_says in found["chat acme-slack"]
    assert crm_says in found["webhook crm"]
    assert TOKEN not in str(found)


def test_doctor_network_connects_and_sends_nothing(
    cli_with_channels: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--network: a listening host is reachable (a TCP connection, no HTTP request: the
    receiver records none); a port nobody listens on fails."""
    dead = free_port()
    with receiving(Receiver()) as receiver:
        monkeypatch.setenv("ACME_SLACK_URL", receiver.url())
        monkeypatch.setenv("CRM_URL", f"http://127.0.0.1:{dead}/hooks/{TOKEN}")
        monkeypatch.setenv("CRM_SECRET", SECRET)
        code, found = _doctor(cli_with_channels, "--network")
        quiet_code, quiet = _doctor(cli_with_channels)
    assert quiet_code == 0  # without --network: well-formed only, nothing contacted
    assert receiver.requests == []
    assert found["chat acme-slack"].startswith("ok") and "reachable" in found["chat acme-slack"]
    assert found["webhook crm"].startswith("FAIL")
    assert "cannot connect: Connection refused" in found["webhook crm"]
    assert code == 1
    assert quiet["webhook crm"].startswith("ok")
    assert TOKEN not in str(found)


def test_metrics_count_channel_notices_by_kind_channel_kind_and_state(tmp_path: Path) -> None:
    def adjust(s: Settings) -> Settings:
        acme = CustomerSetting(
            "Acme", domains=("acme.test",), chat=(ChatChannelSetting("slack", "A_URL", "room"),)
        )
        return dataclasses.replace(s, customers=(acme,))

    site = make_site(f"sqlite:///{tmp_path / 'mailgate.db'}", seed=False, adjust=adjust)
    try:
        ids = [add_notice(site.store, channel="room", ticket_id=None) for _ in range(3)]
        ids.append(add_notice(site.store, channel="gone", ticket_id=None))
        with site.store.transaction() as session:
            session.execute(update(Notice).where(Notice.id.in_(ids[:2])).values(state="sent"))
            session.execute(update(Notice).where(Notice.id == ids[3]).values(state="failed"))
        text = TestClient(site.app, client=("127.0.0.1", 40000)).get("/metrics").text
    finally:
        site.store.engine.dispose()
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def channel(kind: str, channel_kind: str, state: str) -> float:
        labels = (("channel_kind", channel_kind), ("kind", kind), ("state", state))
        return got[("mailgate_channel_notices_total", labels)]

    assert channel("agent_replied", "slack", "sent") == 2
    assert channel("agent_replied", "slack", "pending") == 1
    assert channel("agent_replied", "unknown", "failed") == 1
    assert not any(k[0] == "mailgate_notices_total" for k in got)  # no mail notices
