"""The JSON each chat service is sent, the signature, and the HTTP rules of the chat
transport: pure functions, no server (tests/test_chat_delivery.py has the servers)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jinja2.meta
import pytest

from mailgate.core import chat_payloads as p
from mailgate.core.chat_payloads import ChatLine, chat_payload
from mailgate.outbound.chat_transport import parse_retry_after, scrub, url_problem
from mailgate.outbound.render import SAMPLE, Renderer

LINE = ChatLine(
    kind="agent_replied",
    text="[#12] New reply to your request",
    link="https://support.example.com/tickets/12",
    number=12,
    reference="[#12]",
    words={"status": "Open"},
    notice_id=7,
)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_slack_is_block_kit_with_the_reference_linked() -> None:
    assert chat_payload("slack", LINE) == {
        "text": "[#12] New reply to your request",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "<https://support.example.com/tickets/12|#12> New reply to your request",
                },
            }
        ],
    }


def test_mattermost_is_one_markdown_line() -> None:
    assert chat_payload("mattermost", LINE) == {
        "text": "[#12](https://support.example.com/tickets/12) New reply to your request"
    }


def test_teams_is_an_adaptive_card_with_an_open_url_action() -> None:
    body = chat_payload("teams", LINE)
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"] == [
        {
            "type": "TextBlock",
            "text": "[#12](https://support.example.com/tickets/12) New reply to your request",
            "wrap": True,
        }
    ]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "#12", "url": "https://support.example.com/tickets/12"}
    ]


def test_plain_webhook_channel_is_flat_json() -> None:
    line = ChatLine(**{**LINE.__dict__, "words": {"status": "Open", "due": "resolution"}})
    assert chat_payload("webhook", line) == {
        "id": 7,
        "kind": "agent_replied",
        "ticket": 12,
        "url": "https://support.example.com/tickets/12",
        "text": "[#12] New reply to your request",
        "status": "Open",
        "due": "resolution",
    }


def test_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown chat kind 'irc'"):
        chat_payload("irc", LINE)


def test_system_words_cannot_make_markup_or_mentions() -> None:
    """A status an operator named with markup characters stays text: no @channel in
    Slack, no emphasis or link in Markdown, and the link target cannot be broken out of."""
    line = ChatLine(
        kind="status_changed",
        text="[#3] Status changed to <!channel> *On_Hold* [x](https://evil.test)",
        link="https://support.example.com/t/3 (x)|y>",
        number=3,
        reference="[#3]",
    )
    slack = chat_payload("slack", line)["blocks"][0]["text"]["text"]
    assert "<!channel>" not in slack and "&lt;!channel&gt;" in slack
    assert slack.startswith("<https://support.example.com/t/3%20%28x%29%7Cy%3E|#3>")
    markdown = chat_payload("mattermost", line)["text"]
    assert r"\<!channel\> \*On\_Hold\* \[x\](https://evil.test)" in markdown
    assert markdown.startswith("[#3](https://support.example.com/t/3%20%28x%29%7Cy%3E) ")
    assert p.escape_markdown("1. two") == r"1\. two"
    assert p.escape_markdown("- item") == r"\- item"
    assert p.escape_markdown("# title") == r"\# title"


def test_a_template_without_the_tag_still_links_the_ticket() -> None:
    line = ChatLine(kind="assigned", text="Assigned to you", link="https://s.test/t/4", number=4)
    assert chat_payload("mattermost", line)["text"] == "[#4](https://s.test/t/4) Assigned to you"


@pytest.mark.parametrize("language", ["en", "fr", "es"])
@pytest.mark.parametrize(
    "kind",
    [
        "acknowledgement",
        "agent_replied",
        "status_changed",
        "closed_ticket",
        "assigned",
        "customer_replied",
        "reminder",
        "supplier_replied",
    ],
)
def test_chat_lines_come_from_the_content_free_subject_templates(kind: str, language: str) -> None:
    """Every chat kind's subject renders to one line of template words, the tag and
    system words: it has no place for a subject, body or name."""
    renderer = Renderer()
    text = renderer.subject(kind, language, SAMPLE)
    assert "\n" not in text and text.startswith("[#123]")
    env = renderer.env
    assert env.loader is not None
    source = env.loader.get_source(env, f"{language}/{kind}.subject")[0]
    used = jinja2.meta.find_undeclared_variables(env.parse(source))
    assert used <= {"tag", "status", "due", "number"}, used


def test_signature_is_hmac_sha256_over_time_dot_body() -> None:
    body = p.webhook_body(
        {"event": "ticket.created", "ticket": 12}, delivery_id=5, created_at="2026-01-05T09:00:00Z"
    )
    assert json.loads(body) == {
        "event": "ticket.created",
        "ticket": 12,
        "id": 5,
        "created_at": "2026-01-05T09:00:00Z",
    }
    header = p.signature("whsec-test", 1767603600, body)
    expected = hmac.new(b"whsec-test", b"1767603600." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1767603600,v1={expected}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", T0 + timedelta(seconds=120)),
        ("Mon, 05 Jan 2026 09:10:00 GMT", T0 + timedelta(minutes=10)),
        ("Mon, 05 Jan 2026 08:00:00 GMT", T0),  # in the past: now
        ("99999999", T0 + timedelta(hours=24)),  # capped
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after(header: str | None, expected: datetime | None) -> None:
    assert parse_retry_after(header, T0) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.slack.com/services/T/B/x", None),
        ("http://127.0.0.1:8000/hook", None),
        ("http://localhost/hook", None),
        ("http://[::1]:81/hook", None),
        ("http://chat.example.com/hooks/x", "is http:// to another machine; use https://"),
        ("ftp://example.com/x", "is not an https:// URL"),
        ("hooks.slack.com/services/x", "is not an https:// URL"),
        ("https://example.com:port/x", "is not a URL"),
    ],
)
def test_url_rules(url: str, problem: str | None) -> None:
    assert url_problem(url) == problem


def test_scrub_removes_every_part_of_the_url() -> None:
    url = "https://chat.example.com/hooks/abcd1234token?key=s3cr3tvalue"
    page = f"<pre>Cannot POST /hooks/abcd1234token?key=s3cr3tvalue</pre> {url}\n" + "x" * 500
    text = scrub(page, url)
    assert "abcd1234token" not in text and "s3cr3tvalue" not in text
    assert len(text) <= 201 and "\n" not in text
