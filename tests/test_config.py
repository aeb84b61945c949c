"""Configuration: defaults, TOML, environment overrides, validation messages, init."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from pathlib import Path

import pytest

from mailgate.core import config
from mailgate.core.errors import ConfigError
from mailgate.core.settings import Settings

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config.example.toml"


def _problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(path, env or {})
    return info.value.problems


def test_built_in_defaults_need_no_file() -> None:
    """With no file at all, the defaults load and run on SQLite with the file transport."""
    s = config.load(None, {})
    assert s.database.url == "sqlite:///mailgate.db"
    assert s.queue.broker == "embedded"
    assert s.outbound.transport == "file"
    assert s.source == config.BUILT_IN


def test_example_file_matches_built_in_defaults() -> None:
    """config.example.toml documents every key with exactly the built-in default (its
    relative file names taken, as in any config file, relative to its folder)."""
    loaded = config.load(EXAMPLE, {"MAILGATE_SECURITY_SECRET": "x" * 32})
    defaults = Settings()
    expected = dataclasses.replace(
        defaults,
        security=dataclasses.replace(defaults.security, secret="x" * 32),
        database=dataclasses.replace(defaults.database, url=f"sqlite:///{REPO / 'mailgate.db'}"),
        outbound=dataclasses.replace(defaults.outbound, folder=str(REPO / "outbox")),
    )
    assert dataclasses.replace(loaded, source="") == dataclasses.replace(expected, source="")


def _keys(cls: type, prefix: str = "") -> set[str]:
    out = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "source":
            continue
        key = f.metadata.get("key", f.name)
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out |= _keys(tp, f"{prefix}{key}.")
        else:
            out.add(f"{prefix}{key}")
    return out


def test_example_file_mentions_every_key() -> None:
    """Every settings key, including commented-out sections, appears in the example file."""
    text = EXAMPLE.read_text()
    mentioned = set(re.findall(r"^#?\s*([a-z_0-9]+)\s*=", text, flags=re.M))
    sections = set(re.findall(r"^#?\s*\[\[?([a-z_.]+)\]\]?", text, flags=re.M))
    for key in _keys(Settings):
        section, _, leaf = key.rpartition(".")
        assert leaf in mentioned or key in sections, (
            f"{key} is not documented in config.example.toml"
        )
        if section:
            assert section in sections, f"[{section}] is not in config.example.toml"
    from mailgate.core.settings import AgentSetting, CustomerSetting, ImapMailbox

    for cls in (ImapMailbox, AgentSetting, CustomerSetting):
        for f in dataclasses.fields(cls):
            assert f.name in mentioned, f"{cls.__name__}.{f.name} is not documented"


def test_environment_overrides_any_key(tmp_path: Path) -> None:
    """MAILGATE_<SECTION>_<KEY> wins over the file, typed by the key."""
    path = tmp_path / "m.toml"
    path.write_text('[security]\nsecret = "0123456789abcdef0123"\n[smtp]\nlisten = "127.0.0.1:1"\n')
    env = {
        "MAILGATE_SMTP_LISTEN": "127.0.0.1:2626",
        "MAILGATE_SMTP_MAX_RECIPIENTS": "7",
        "MAILGATE_SMTP_ADDRESSES": "a@x.test, b@x.test",
        "MAILGATE_OUTBOUND_SMTP_PASSWORD": "hunter2hunter2",
        "MAILGATE_OUTBOUND_FROM": "help@x.test",
    }
    s = config.load(path, env)
    assert s.smtp.listen == "127.0.0.1:2626"
    assert s.smtp.max_recipients == 7
    assert s.smtp.addresses == ("a@x.test", "b@x.test")
    assert s.outbound.smtp.password == "hunter2hunter2"
    assert s.outbound.from_address == "help@x.test"


def test_environment_value_of_wrong_type_is_named(tmp_path: Path) -> None:
    """A bad environment value names the variable and the key."""
    problems = _problems(
        tmp_path,
        '[security]\nsecret = "0123456789abcdef0123"\n',
        {"MAILGATE_QUEUE_MAX_ATTEMPTS": "many"},
    )
    assert problems == [
        "$MAILGATE_QUEUE_MAX_ATTEMPTS: queue.max_attempts: expected an integer, got 'many'"
    ]


def test_imap_password_per_mailbox_from_environment(tmp_path: Path) -> None:
    """A mailbox password comes from MAILGATE_IMAP_<NAME>_PASSWORD, else MAILGATE_IMAP_PASSWORD."""
    path = tmp_path / "m.toml"
    path.write_text(
        '[security]\nsecret = "0123456789abcdef0123"\n'
        '[[imap.mailboxes]]\nname = "sales"\n[[imap.mailboxes]]\nname = "help-desk"\n'
    )
    s = config.load(
        path, {"MAILGATE_IMAP_HELP_DESK_PASSWORD": "own", "MAILGATE_IMAP_PASSWORD": "shared"}
    )
    assert [m.password for m in s.imap.mailboxes] == ["shared", "own"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[smtp]\nlisten = 25\n", "smtp.listen: expected a string, got 25"),
        ('[smtp]\nlisten = "nowhere"\n', "smtp.listen: expected HOST:PORT"),
        ('[smtp]\nprotocol = "x400"\n', "smtp.protocol: expected one of smtp, lmtp, got 'x400'"),
        ('[smtp]\nlisten_on = "a"\n', "smtp.listen_on: unknown key"),
        ('[database]\nurl = "mysql://x"\n', "database.url: expected a sqlite:/// or postgresql"),
        ('[queue]\nbroker = "kafka://x"\n', "queue.broker: expected embedded"),
        ('[defaults]\nteam = "nobody"\n', "defaults.team: 'nobody' is not a team"),
        ('[[agents]]\nname = "Ann"\n', "agents[0].email: required"),
        (
            '[[agents]]\nemail = "a@x.test"\nteams = ["ghosts"]\n',
            "agents[0].teams: unknown team 'ghosts'",
        ),
        (
            '[[rules]]\nname = "r"\nwhen = { subject = "(" }\nset = { type = "General" }\n',
            "rules[0] ('r').when.subject: not a valid regular expression",
        ),
        (
            '[[rules]]\nname = "r"\nwhen = { subject = "x" }\nset = { type = "Billing" }\n',
            "rules[0] ('r').set.type: unknown type 'Billing'",
        ),
        (
            '[[rules]]\nname = "r"\nwhen = { colour = "x" }\nset = { priority = "High" }\n',
            "rules[0] ('r').when.colour: unknown condition",
        ),
        (
            '[portal]\nticket_url = "https://x"\n',
            "portal.ticket_url: expected a URL containing {number}",
        ),
        (
            '[tickets]\nstatuses = [{ name = "Only", category = "new" }]\n',
            "tickets.statuses: needs",
        ),
        (
            "[sla]\nfirst_response_minutes = { Critical = 30 }\n",
            "sla.first_response_minutes.Critical: unknown priority 'Critical' (known: Low, Normal,",
        ),
        (
            '[sla]\nresolution_minutes = { "Very High" = 0 }\n',
            'sla.resolution_minutes."Very High": unknown priority',
        ),
        (
            '[sla]\nresolution_minutes = { Urgent = "1h" }\n',
            "sla.resolution_minutes.Urgent: expected a positive number of minutes, got '1h'",
        ),
        ("[sla]\nfirst_response_minutes = 60\n", "sla.first_response_minutes: expected a table"),
        ("[sla]\ncheck_interval_seconds = 0\n", "sla.check_interval_seconds: expected a positive"),
    ],
)
def test_each_mistake_is_reported_with_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Every problem reads 'file: section.key: what was expected'."""
    problems = _problems(tmp_path, '[security]\nsecret = "0123456789abcdef0123"\n' + text)
    path = str(tmp_path / "m.toml")
    assert any(p.startswith(f"{path}: {expected}") for p in problems), problems


def test_secret_is_required_in_a_file(tmp_path: Path) -> None:
    """A config file without security.secret is refused with how to fix it."""
    problems = _problems(tmp_path, "")
    assert len(problems) == 1 and "security.secret: required" in problems[0]


def test_broken_toml_is_one_clear_line(tmp_path: Path) -> None:
    """A TOML syntax error names the file and the position."""
    problems = _problems(tmp_path, "[smtp\nlisten=")
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'm.toml'}: not valid TOML")


def test_resolve_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--config, then $MAILGATE_CONFIG, then ./mailgate.toml, then built-in defaults."""
    monkeypatch.chdir(tmp_path)
    assert config.resolve_path(None, {}) is None
    (tmp_path / "mailgate.toml").write_text("")
    assert config.resolve_path(None, {}) == Path("mailgate.toml")
    assert config.resolve_path(None, {"MAILGATE_CONFIG": "/e.toml"}) == Path("/e.toml")
    assert config.resolve_path("/c.toml", {"MAILGATE_CONFIG": "/e.toml"}) == Path("/c.toml")


def test_init_writes_a_valid_private_config(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`mailgate init` writes a file that validates, with a fresh secret, readable only by its owner."""
    target = tmp_path / "fresh.toml"
    result = cli("init", str(target))
    assert result.exit_code == 0, result.output
    assert target.stat().st_mode & 0o777 == 0o600
    data = tomllib.loads(target.read_text())
    assert len(data["security"]["secret"]) >= 40
    assert config.load(target, {}).security.secret == data["security"]["secret"]
    again = cli("init", str(target))
    assert again.exit_code == 1 and "already exists" in again.output


def test_check_config_prints_every_problem_and_exits_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """check-config lists each problem on its own line and exits 2, no traceback."""
    (tmp_path / "mailgate.toml").write_text('[smtp]\nprotocol = "x"\ntls = "sometimes"\n')
    result = cli("check-config")
    assert result.exit_code == 2
    assert "smtp.protocol: expected one of smtp, lmtp" in result.output
    assert "smtp.tls: expected one of none, starttls, implicit" in result.output
    assert "security.secret: required" in result.output
    assert "Traceback" not in result.output


def test_sla_targets_from_the_environment(tmp_path: Path) -> None:
    """A table of targets arrives from the environment as NAME=N,NAME=N."""
    path = tmp_path / "m.toml"
    path.write_text('[security]\nsecret = "0123456789abcdef0123"\n')
    env = {"MAILGATE_SLA_FIRST_RESPONSE_MINUTES": "Urgent=60, High=240"}
    assert config.load(path, env).sla.first_response_minutes == {"Urgent": 60, "High": 240}
    problems = _problems(
        tmp_path,
        '[security]\nsecret = "0123456789abcdef0123"\n',
        {"MAILGATE_SLA_RESOLUTION_MINUTES": "Urgent"},
    )
    assert problems == [
        "$MAILGATE_SLA_RESOLUTION_MINUTES: sla.resolution_minutes: expected a table of "
        "integers (in the environment: NAME=N,NAME=N), got 'Urgent'"
    ]
