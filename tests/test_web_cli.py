"""The portal's commands: `mailgate web`, `agents set-password`; the portal refuses to run
without a secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailgate.core.errors import ConfigError
from mailgate.core.settings import Settings
from mailgate.db.models import AgentPassword
from mailgate.db.store import Store
from mailgate.web.app import create_app
from mailgate.web.server import split_listen
from tests.conftest import SECRET


def _config(tmp_path: Path) -> None:
    (tmp_path / "mailgate.toml").write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "mailgate.db"}"\n'
        f'[security]\nsecret = "{SECRET}"\n'
        '[[agents]]\nemail = "ann@example.com"\nteams = ["support"]\n'
    )


def test_set_password_stores_an_argon2_hash(cli: Callable[..., Any], tmp_path: Path) -> None:
    """set-password keeps an argon2id hash; short passwords and unknown agents are refused."""
    _config(tmp_path)
    done = cli(
        "agents", "set-password", "Ann@Example.com", "--password-stdin", input="long enough pw\n"
    )
    assert done.exit_code == 0 and "password set for ann@example.com" in done.output
    store = Store(f"sqlite:///{tmp_path / 'mailgate.db'}")
    with store.transaction() as session:
        row = session.scalars(select(AgentPassword)).one()
        assert row.password_hash.startswith("$argon2id$")
        assert "long enough pw" not in row.password_hash
    store.engine.dispose()
    short = cli("agents", "set-password", "ann@example.com", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    unknown = cli(
        "agents", "set-password", "zed@example.com", "--password-stdin", input="long enough pw\n"
    )
    assert unknown.exit_code == 1 and "no agent" in unknown.output
    assert "Traceback" not in short.output + unknown.output


def test_set_password_prompts_twice(cli: Callable[..., Any], tmp_path: Path) -> None:
    """Without --password-stdin the password is asked for twice, hidden."""
    _config(tmp_path)
    done = cli(
        "agents", "set-password", "ann@example.com", input="long enough pw\nlong enough pw\n"
    )
    assert done.exit_code == 0, done.output
    assert "long enough pw" not in done.output


def test_web_command_is_registered(cli: Callable[..., Any]) -> None:
    """`mailgate web`, `agents` and `api-tokens` appear in the help."""
    result = cli("--help")
    for command in ("web", "agents", "api-tokens"):
        assert f"  {command} " in result.output
    assert "--listen" in cli("web", "--help").output


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_listen_addresses(listen: str, expected: tuple[str, int]) -> None:
    """web.listen splits into host and port, IPv6 brackets removed."""
    assert split_listen(listen) == expected


def test_portal_needs_a_secret(tmp_path: Path) -> None:
    """Without security.secret there is nothing to sign links and forms with: refused."""
    with pytest.raises(ConfigError, match=r"security\.secret"):
        create_app(Settings(), Store(f"sqlite:///{tmp_path / 'm.db'}"))


def test_web_settings_are_validated(tmp_path: Path) -> None:
    """Bad [web] values are named with file and key."""
    from mailgate.core import config

    path = tmp_path / "m.toml"
    path.write_text(
        f'[security]\nsecret = "{SECRET}"\n[web]\nlisten = "nowhere"\nbase_url = "support.example.com/"\n'
        'cookie_secure = "sometimes"\nsession_hours = 0\n'
    )
    with pytest.raises(ConfigError) as info:
        config.load(path, {})
    text = "\n".join(info.value.problems)
    for key in ("web.listen", "web.base_url", "web.cookie_secure", "web.session_hours"):
        assert f"{path}: {key}:" in text
