"""Chat channels (issue 24): every ``chat = [...]`` of the configuration under its name.

Pure. A channel belongs to a customer account (told what the account's people are told
by mail) or to a team (told what its agents are told); ``channels`` is the one place a
name is given to a channel that has none, for the decision, the sender and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mailgate.core.channel_settings import ChatChannelSetting
from mailgate.core.settings import Settings

SLACK = "slack"
MATTERMOST = "mattermost"
TEAMS = "teams"
WEBHOOK = "webhook"  # a chat service that takes plain JSON (not a signed [[webhooks]] one)
KINDS = (SLACK, MATTERMOST, TEAMS, WEBHOOK)

OwnerKind = Literal["customer", "team"]
CUSTOMER: OwnerKind = "customer"
TEAM: OwnerKind = "team"


@dataclass(frozen=True)
class ChatChannel:
    """One configured channel, its name settled and its language chosen."""

    name: str
    kind: str
    url_env: str
    owner_kind: OwnerKind
    owner: str  # the customer account's or the team's name
    language: str  # the account's language, else defaults.language; teams: the default


def channel_name(setting: ChatChannelSetting, owner: str) -> str:
    """``setting.name``, else ``"<owner>-<kind>"`` in lower case with spaces as ``-``
    ("Acme Corp" + slack → ``acme-corp-slack``)."""
    if setting.name:
        return setting.name
    return "-".join(f"{owner}-{setting.kind}".lower().split())


def configured(settings: Settings) -> list[ChatChannel]:
    """Every channel of the configuration in file order, duplicates of a name included
    (check-config reports those; ``channels`` keeps the first)."""
    out: list[ChatChannel] = []
    for customer in settings.customers:
        language = customer.language or settings.defaults.language
        for c in customer.chat:
            name = channel_name(c, customer.name)
            out.append(ChatChannel(name, c.kind, c.url_env, CUSTOMER, customer.name, language))
    for team in settings.teams:
        for c in team.chat:
            name = channel_name(c, team.name)
            out.append(
                ChatChannel(name, c.kind, c.url_env, TEAM, team.name, settings.defaults.language)
            )
    return out


def channels(settings: Settings) -> dict[str, ChatChannel]:
    """Every chat channel of ``settings`` by its name."""
    out: dict[str, ChatChannel] = {}
    for channel in configured(settings):
        out.setdefault(channel.name, channel)
    return out
