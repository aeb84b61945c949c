"""What a chat service or a webhook receiver is sent: JSON bodies and the signature.

Pure: plain values in, JSON-ready dicts and bytes out. A chat message is made only of
what an email notice's subject is made of (invariant 3): the one-line text rendered
from the notice kind's ``.subject`` template, the ticket reference, the portal link and
system words (status, due). Nothing a customer or agent wrote ever reaches these
functions, except a signed webhook's ``message`` when its operator asked for it
(``include_content``), which the caller reads and passes in explicitly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from mailgate.core.chat import KINDS, MATTERMOST, SLACK, TEAMS, WEBHOOK

# What `mailgate notices test-channel` sends: says nothing about any ticket.
TEST_MESSAGE = "mailgate test message: this channel is set up"

SIGNATURE_HEADER = "Mailgate-Signature"
DELIVERY_HEADER = "Mailgate-Delivery"
# How far a receiver should let a signature's time be from its own clock (docs/chat.md).
SIGNATURE_TOLERANCE_SECONDS = 300

# CommonMark's backslash escapes for the characters that make markup anywhere in a line
# in Mattermost and in an Adaptive Card's TextBlock: emphasis, code, links (no "[", no
# link: "(" and "!" are then plain), autolinks and HTML, Teams' {{DATE()}}. Only these,
# so that the usual line ("New reply to your request") carries no backslash at all.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>~])")
# At the start of a line: a heading, a list item or a quote.
_MARKDOWN_LEADING = re.compile(r"^(\s*(?:\d+)?)([#+.)-])")
# Characters a link target may not hold raw inside ``<url|label>`` or ``[label](url)``.
_URL_SAFE = ":/?#[]@!$&'*+,;=%~-._"


@dataclass(frozen=True)
class ChatLine:
    """One notice as a chat message: everything a payload may show."""

    kind: str  # the notice kind: agent_replied, status_changed, ...
    text: str  # one line, e.g. "[#12] New reply to your request"
    link: str  # the ticket in the portal
    number: int | None = None
    # The reference as the text shows it (the subject tag, e.g. "[#12]"): shown as a link.
    reference: str = ""
    # System words from the notice's detail: status, due, due_at.
    words: Mapping[str, str] = field(default_factory=dict)
    notice_id: int | None = None


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters (its docs: only these are escaped); this also
    stops ``<!channel>`` and ``<@U123>`` from being made out of system words."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_markdown(text: str, *, line_start: bool = True) -> str:
    """Backslash-escape what would start markup in Mattermost's or Teams' Markdown;
    ``line_start``: ``text`` begins the line (where "# ", "- " and "1. " are markup)."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    if not line_start:
        return escaped
    return _MARKDOWN_LEADING.sub(lambda m: m[1] + "\\" + m[2], escaped)


def _link_target(url: str) -> str:
    # Spaces, parentheses and angle brackets would end the link early.
    return quote(url, safe=_URL_SAFE)


def _label(line: ChatLine) -> str:
    """The link's words: the reference without its brackets ("#12"), which reads the
    same in every language."""
    if line.reference:
        return line.reference.strip("[]") or line.reference
    return f"#{line.number}" if line.number is not None else line.link


def _split(line: ChatLine) -> tuple[str, str]:
    """The text before and after the reference; with no reference in the text (an
    operator's template without ``{{ tag }}``) the link goes first."""
    if line.reference and line.reference in line.text:
        before, after = line.text.split(line.reference, 1)
        return before, after
    return "", " " + line.text if line.text else ""


def slack(line: ChatLine) -> dict[str, Any]:
    """An incoming webhook's body: the plain line for notifications, a Block Kit section
    with the reference linked to the portal."""
    before, after = _split(line)
    link = f"<{escape_mrkdwn(_link_target(line.link))}|{escape_mrkdwn(_label(line))}>"
    linked = f"{escape_mrkdwn(before)}{link}{escape_mrkdwn(after)}"
    return {
        "text": escape_mrkdwn(line.text),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": linked}}],
    }


def _markdown_line(line: ChatLine) -> str:
    """The line in Markdown with the reference a link to the portal."""
    before, after = _split(line)
    label = escape_markdown(_label(line), line_start=False)
    link = f"[{label}]({_link_target(line.link)})"
    return f"{escape_markdown(before)}{link}{escape_markdown(after, line_start=False)}"


def mattermost(line: ChatLine) -> dict[str, Any]:
    """An incoming webhook's body: one Markdown line, the reference a link."""
    return {"text": _markdown_line(line)}


def teams(line: ChatLine) -> dict[str, Any]:
    """A Workflows ("when a Teams webhook request is received") body: one Adaptive Card
    with the line and a button that opens the ticket."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": _markdown_line(line), "wrap": True}],
        "actions": [
            {"type": "Action.OpenUrl", "title": _label(line), "url": _link_target(line.link)}
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def plain(line: ChatLine) -> dict[str, Any]:
    """A ``webhook`` chat channel: the same facts as plain JSON, for a bot of one's own."""
    body: dict[str, Any] = {
        "id": line.notice_id,
        "kind": line.kind,
        "ticket": line.number,
        "url": line.link,
        "text": line.text,
        "status": line.words.get("status", ""),
    }
    for key in ("due", "due_at"):
        if line.words.get(key):
            body[key] = line.words[key]
    return body


_BUILDERS = {SLACK: slack, MATTERMOST: mattermost, TEAMS: teams, WEBHOOK: plain}


def chat_payload(service: str, line: ChatLine) -> dict[str, Any]:
    """The body ``service`` (slack, mattermost, teams, webhook) expects for ``line``."""
    try:
        build = _BUILDERS[service]
    except KeyError:
        raise ValueError(f"unknown chat kind {service!r}; one of {', '.join(KINDS)}") from None
    return build(line)


def check_line(link: str) -> ChatLine:
    """The harmless line `notices test-channel` sends, linking the portal's home."""
    return ChatLine(kind="test", text=TEST_MESSAGE, link=link, reference="")


def encode(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, keys sorted, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def webhook_body(
    detail: Mapping[str, Any],
    *,
    delivery_id: int | str,
    created_at: str,
    message: Mapping[str, Any] | None = None,
) -> bytes:
    """A signed webhook's body: the event's system fields from the outbox row, its
    delivery id and time, and ``message`` only when the webhook includes content."""
    payload = {**detail, "id": delivery_id, "created_at": created_at}
    if message is not None:
        payload["message"] = dict(message)
    return encode(payload)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Mailgate-Signature`` value: ``t=<unix time>,v1=<hex HMAC-SHA256>`` over
    ``"<t>.<body>"`` (Stripe's scheme: the time is signed, so a captured request cannot
    be replayed later with a new time)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"
