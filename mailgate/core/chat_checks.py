"""check-config for chat channels and webhooks (issue 24): kinds, environment variable
names, channel names, subscribed events and the per-channel limit."""

from __future__ import annotations

import re
from collections.abc import Callable

from mailgate.core import chat, webhook_events
from mailgate.core.settings import Settings

Bad = Callable[[str, str], None]

# A POSIX environment variable name as shells write them: the URL and secret are read
# from it, so a typo must be caught here rather than as a failed delivery.
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# notices.channel is VARCHAR(64); the name is also in every row's recipient, rate key
# and cause, so no white space or control character either.
MAX_CHANNEL_NAME = 64


def check_channels(s: Settings, bad: Bad) -> None:
    """Every ``chat`` entry of ``[[customers]]`` and ``[[teams]]``, and ``[[webhooks]]``;
    a name (given or made from the owner) names one channel or webhook only."""
    if s.outbound.chat_max_per_hour < 1:
        bad("outbound.chat_max_per_hour", "expected a positive integer")
    seen: dict[str, str] = {}  # channel or webhook name -> the key that named it first

    def named(key: str, name: str) -> None:
        if not name.strip() or len(name) > MAX_CHANNEL_NAME or _unsafe(name):
            bad(key, f"expected 1 to {MAX_CHANNEL_NAME} characters, no spaces, got {name!r}")
        elif name in seen:
            bad(key, f"duplicate channel name {name!r} (also {seen[name]})")
        else:
            seen[name] = key

    owners = [(f"customers[{i}]", c.name, c.chat) for i, c in enumerate(s.customers)]
    owners += [(f"teams[{i}]", t.name, t.chat) for i, t in enumerate(s.teams)]
    for where, owner, entries in owners:
        for j, entry in enumerate(entries):
            at = f"{where}.chat[{j}]"
            if entry.kind not in chat.KINDS:
                bad(f"{at}.kind", f"expected one of {', '.join(chat.KINDS)}, got {entry.kind!r}")
            _env(bad, f"{at}.url_env", entry.url_env)
            # The made-up name is checked too: an owner with a tab in it cannot make one.
            named(f"{at}.name", chat.channel_name(entry, owner))
    for i, hook in enumerate(s.webhooks):
        at = f"webhooks[{i}]"
        named(f"{at}.name", hook.name)
        _env(bad, f"{at}.url_env", hook.url_env)
        _env(bad, f"{at}.secret_env", hook.secret_env)
        if not hook.events:
            bad(f"{at}.events", 'expected at least one event, or ["*"] for all')
        for j, event in enumerate(hook.events):
            if event != webhook_events.ALL and event not in webhook_events.EVENTS:
                known = ", ".join(webhook_events.EVENTS)
                bad(f"{at}.events[{j}]", f"unknown event {event!r} (known: {known}, or *)")


def _env(bad: Bad, key: str, value: str) -> None:
    # The value is not repeated: a wrong one is most often the URL or secret itself,
    # pasted here, which check-config must not print.
    if not ENV_NAME.fullmatch(value):
        bad(
            key,
            "expected the name of an environment variable (A-Z, 0-9 and _, not starting "
            "with a digit) that holds the value, not the value itself",
        )


def _unsafe(name: str) -> bool:
    return any(ch.isspace() or not ch.isprintable() for ch in name)
