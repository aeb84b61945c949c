"""Settings of the places other than mail where notices go (issue 24): the chat channels
of a customer account or a team (``chat = [...]`` on ``[[customers]]`` and ``[[teams]]``)
and the signed webhooks (``[[webhooks]]``).

Apart from ``settings.py`` so that file stays readable; ``settings.py`` re-exports both.
Neither holds a secret: ``url_env`` and ``secret_env`` name environment variables, so a
webhook URL (itself a credential for Slack, Mattermost and Teams) is never in the file,
the database or a log line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChatChannelSetting:
    """A chat channel told of a customer account's or a team's tickets."""

    kind: str  # slack | mattermost | teams | webhook (core.chat.KINDS)
    url_env: str  # the environment variable that holds the incoming-webhook URL
    # Empty: "<owner>-<kind>", lower case, spaces as "-" (core.chat.channel_name); never
    # stored here, so renaming the account renames the channel.
    name: str = ""


@dataclass(frozen=True)
class WebhookSetting:
    """``[[webhooks]]``: a signed JSON POST per ticket event an integration subscribes to."""

    name: str
    events: tuple[str, ...]  # core.webhook_events.EVENTS, or ["*"] for all of them
    url_env: str
    secret_env: str  # the environment variable that holds the signing secret
    # True: the delivery adds the message's text at send time; the outbox row never has it.
    include_content: bool = False
