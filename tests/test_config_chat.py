"""Chat channels and webhooks in the configuration (issue 24): what a file becomes, and
check-config naming the file and the key of every mistake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mailgate.core import chat, config
from mailgate.core.channel_settings import ChatChannelSetting, WebhookSetting
from mailgate.core.errors import ConfigError

SECRET = '[security]\nsecret = "0123456789abcdef0123"\n'
ACME = '[[customers]]\nname = "Acme Corp"\ndomains = ["acme.test"]\nlanguage = "fr"\n'
SUPPORT = '[[teams]]\nname = "support"\n'


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "m.toml"
    path.write_text(SECRET + text)
    with pytest.raises(ConfigError) as info:
        config.load(path, {})
    return info.value.problems


def test_channels_and_webhooks_load_from_the_file(tmp_path: Path) -> None:
    """The TOML of config.example.toml's comments: inline tables on an account and a
    team, a [[webhooks]] entry; the names made from the owners, in lower case."""
    path = tmp_path / "m.toml"
    path.write_text(
        SECRET
        + ACME
        + 'chat = [{ kind = "slack", url_env = "ACME_SLACK_WEBHOOK" }]\n'
        + SUPPORT
        + 'chat = [{ kind = "mattermost", url_env = "SUPPORT_MM", name = "desk" }]\n'
        + "[outbound]\nchat_max_per_hour = 7\n"
        + '[[webhooks]]\nname = "crm"\nevents = ["*"]\nurl_env = "CRM_URL"\n'
        + 'secret_env = "CRM_SECRET"\n'
    )
    s = config.load(path, {})
    assert s.customers[0].chat == (ChatChannelSetting("slack", "ACME_SLACK_WEBHOOK"),)
    assert s.webhooks == (WebhookSetting("crm", ("*",), "CRM_URL", "CRM_SECRET"),)
    assert s.outbound.chat_max_per_hour == 7
    found = chat.channels(s)
    assert list(found) == ["acme-corp-slack", "desk"]
    assert found["acme-corp-slack"] == chat.ChatChannel(
        "acme-corp-slack", "slack", "ACME_SLACK_WEBHOOK", "customer", "Acme Corp", "fr"
    )
    assert found["desk"].owner_kind == "team" and found["desk"].language == "en"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            ACME + 'chat = [{ kind = "irc", url_env = "ACME_URL" }]\n',
            "customers[0].chat[0].kind: expected one of slack, mattermost, teams, webhook, "
            "got 'irc'",
        ),
        (
            SUPPORT + 'chat = [{ kind = "slack", url_env = "https://hooks.slack.com/x" }]\n',
            "teams[0].chat[0].url_env: expected the name of an environment variable",
        ),
        (
            ACME + 'chat = [{ kind = "slack", url_env = "acme_url" }]\n',
            "customers[0].chat[0].url_env: expected the name of an environment variable",
        ),
        (
            ACME
            + 'chat = [{ kind = "slack", url_env = "A" }, { kind = "slack", url_env = "B" }]\n',
            "customers[0].chat[1].name: duplicate channel name 'acme-corp-slack' "
            "(also customers[0].chat[0].name)",
        ),
        (
            ACME
            + 'chat = [{ kind = "teams", url_env = "A", name = "ops" }]\n'
            + SUPPORT
            + 'chat = [{ kind = "slack", url_env = "B", name = "ops" }]\n',
            "teams[0].chat[0].name: duplicate channel name 'ops'",
        ),
        (
            ACME
            + 'chat = [{ kind = "slack", url_env = "A", name = "crm" }]\n'
            + '[[webhooks]]\nname = "crm"\nevents = ["*"]\nurl_env = "U"\nsecret_env = "S"\n',
            "webhooks[0].name: duplicate channel name 'crm'",
        ),
        (
            ACME + 'chat = [{ kind = "slack", url_env = "A", name = "two words" }]\n',
            "customers[0].chat[0].name: expected 1 to 64 characters, no spaces",
        ),
        (
            '[[webhooks]]\nname = "crm"\nevents = ["ticket.created", "ticket.deleted"]\n'
            'url_env = "U"\nsecret_env = "S"\n',
            "webhooks[0].events[1]: unknown event 'ticket.deleted' (known: ticket.created,",
        ),
        (
            '[[webhooks]]\nname = "crm"\nevents = []\nurl_env = "U"\nsecret_env = "S"\n',
            "webhooks[0].events: expected at least one event",
        ),
        (
            '[[webhooks]]\nname = "crm"\nevents = ["*"]\nurl_env = "U"\nsecret_env = "s-1"\n',
            "webhooks[0].secret_env: expected the name of an environment variable",
        ),
        (
            '[[webhooks]]\nname = "crm"\nevents = ["*"]\nurl_env = "U"\n',
            "webhooks[0].secret_env: required",
        ),
        ("[outbound]\nchat_max_per_hour = 0\n", "outbound.chat_max_per_hour: expected a positive"),
    ],
)
def test_each_channel_mistake_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    """Every problem reads 'file: section.key: what was expected'; a URL written where
    the name of its variable belongs is not printed back (it is a credential)."""
    problems = _problems(tmp_path, text)
    path = str(tmp_path / "m.toml")
    assert any(p.startswith(f"{path}: {expected}") for p in problems), problems
    assert not any("hooks.slack.com" in p for p in problems)


def test_check_config_names_every_channel_mistake(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    """`mailgate check-config` prints the four mistakes of one file, each with the file
    and the key, and exits 2."""
    config_file = tmp_path / "mailgate.toml"
    config_file.write_text(
        SECRET
        + ACME
        + 'chat = [{ kind = "irc", url_env = "1BAD" }, { kind = "slack", url_env = "A" },'
        + ' { kind = "slack", url_env = "B" }]\n'
        + '[[webhooks]]\nname = "crm"\nevents = ["ticket.opened"]\nurl_env = "U"\n'
        + 'secret_env = "S"\n'
    )
    result = cli("check-config")
    assert result.exit_code == 2, result.output
    for expected in (
        "customers[0].chat[0].kind: expected one of",
        "customers[0].chat[0].url_env: expected the name of an environment variable",
        "customers[0].chat[2].name: duplicate channel name 'acme-corp-slack'",
        "webhooks[0].events[0]: unknown event 'ticket.opened'",
    ):
        assert f"{config_file}: {expected}" in result.output, result.output
    assert "Traceback" not in result.output
