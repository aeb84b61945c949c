"""Load a TOML file and the environment into a validated, frozen ``Settings``.

Every problem is collected, not just the first, and each reads
``file: section.key: what was expected`` so an operator can fix them in one go.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mailgate.core.errors import ConfigError
from mailgate.core.settings import Settings
from mailgate.core.validation import validate

ENV_PREFIX = "MAILGATE_"
CONFIG_ENV = "MAILGATE_CONFIG"
DEFAULT_FILE = "mailgate.toml"
BUILT_IN = "<built-in defaults>"
# Fields of Settings that are not TOML keys.
_NOT_KEYS = {"source"}


def resolve_path(explicit: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The config file to read: ``--config``, else ``$MAILGATE_CONFIG``, else ``./mailgate.toml``.

    Returns None when none is given and ``./mailgate.toml`` does not exist
    (built-in defaults).
    """
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    default = Path(DEFAULT_FILE)
    return default if default.exists() else None


def load(
    path: Path | None, env: Mapping[str, str] | None = None, *, check: bool = True
) -> Settings:
    """Read, override from the environment, convert and (``check``) validate.

    Raises ``ConfigError`` with every problem found. ``check=False`` skips only the
    cross-field validation (``mailgate doctor`` runs it as one of its checks); types are
    always checked."""
    settings, problems = inspect(path, env, check=check)
    if problems:
        raise ConfigError(problems)
    return settings


def inspect(
    path: Path | None, env: Mapping[str, str] | None = None, *, check: bool = True
) -> tuple[Settings, list[str]]:
    """Every problem of the configuration at once, and the settings as far as they go.

    A value of the wrong type is reported and left at its default, so the rest is still
    converted and validated: one run of ``check-config`` names every mistake. A
    validation problem about a key whose value was already refused is left out (it
    follows from the first). Only a file that cannot be read or parsed raises
    ``ConfigError`` (one problem: nothing else can be checked).

    Relative file and folder names in a config file (``PATH_KEYS``, a ``sqlite:///``
    database) are taken relative to the file's folder; from the environment or the
    built-in defaults, relative to the current folder.
    """
    env = os.environ if env is None else env
    where = str(path) if path is not None else BUILT_IN
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
        _resolve_relative(data, Path(os.path.abspath(path)).parent)
    problems: list[str] = []
    _apply_env(data, env, problems, where)
    _default_base_url(data)
    converted = _convert(Settings, data, where, "", problems)
    settings = converted if isinstance(converted, Settings) else Settings()
    settings = dataclasses.replace(settings, source=where)
    if check:
        refused = {_problem_key(p) for p in problems}
        problems.extend(
            p
            for p in validate(settings, where, from_file=path is not None)
            if not any(_related(_problem_key(p), key) for key in refused)
        )
    return settings, problems


def _problem_key(problem: str) -> str:
    """The ``section.key`` of a ``where: section.key: text`` (or ``$NAME: ...``) line."""
    parts = problem.split(": ")
    return parts[1] if len(parts) > 2 else ""


def _related(key: str, other: str) -> bool:
    """Is one of the two keys the other or inside it (``a.b`` and ``a.b[0].c``)?"""
    if not key or not other:
        return False
    short, long = sorted((key, other), key=len)
    return long == short or long.startswith((f"{short}.", f"{short}["))


# Keys that name a file or a folder (besides a sqlite:/// database.url).
PATH_KEYS = (
    "smtp.tls_cert",
    "smtp.tls_key",
    "outbound.folder",
    "outbound.templates",
    "outbound.smtp.ca_file",
    "logging.file",
)
SQLITE_PREFIX = "sqlite:///"


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names; None for another database or ``:memory:``."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    name = url.removeprefix(SQLITE_PREFIX).split("?", 1)[0]
    if not name or name == ":memory:":
        return None
    return Path(name).expanduser()


def _relative_to(folder: Path, name: str) -> str:
    if not name or name.startswith("~") or Path(name).is_absolute():
        return name
    return str(folder / name)


def _resolve_relative(data: dict[str, Any], folder: Path) -> None:
    """Make the relative file and folder names of a config file, and the relative
    defaults (``mailgate.db``, ``outbox``) of the keys it leaves out, relative to ``folder``."""
    defaults = Settings()
    for dotted in ("database.url", *PATH_KEYS):
        *parents, leaf = dotted.split(".")
        node: Any = data
        default: Any = defaults
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
            default = getattr(default, part)
        if not isinstance(node, dict):
            continue  # a section of the wrong type: conversion names it
        value = node.get(leaf, getattr(default, leaf))
        if not isinstance(value, str):
            continue
        if dotted != "database.url":
            value = _relative_to(folder, value)
        elif sqlite_file(value) is not None:
            name, sep, query = value.removeprefix(SQLITE_PREFIX).partition("?")
            value = SQLITE_PREFIX + _relative_to(folder, name) + sep + query
        if value or leaf in node:
            node[leaf] = value


_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "*")  # noqa: S104 - names, not a bind


def _default_base_url(data: dict[str, Any]) -> None:
    """Without ``web.base_url``, the portal is where ``web.listen`` is: a ``listen`` set
    alone must not leave links pointing at the default port."""
    web = data.get("web")
    if not isinstance(web, dict) or "base_url" in web or not isinstance(web.get("listen"), str):
        return
    host, sep, port = web["listen"].rpartition(":")
    if not sep or not port.isdigit():
        return  # validation names the bad listen
    host = host.strip("[]")
    if host in _WILDCARD_HOSTS:
        host = "127.0.0.1"
    web["base_url"] = f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found (mailgate init writes one)"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, expected a TOML file"]) from None
    except PermissionError:
        raise ConfigError([f"{path}: permission denied"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _key(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("key", f.name))


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is str:
        return "a string"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        if dataclasses.is_dataclass(inner):
            return "an array of tables"
        return "an array of strings"
    if origin is dict and typing.get_args(tp)[1] is int:
        return "a table of integers (in the environment: NAME=N,NAME=N)"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a table"
    return str(tp)


def _convert(tp: Any, value: Any, where: str, path: str, problems: list[str]) -> Any:
    """Turn a TOML value into ``tp``; on a mismatch, record a problem and return None."""
    origin = typing.get_origin(tp)
    if isinstance(tp, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
        origin = typing.get_origin(tp)
    ok = (
        (tp is str and isinstance(value, str))
        or (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
    )
    if ok:
        return value
    if origin is tuple and isinstance(value, list):
        inner = typing.get_args(tp)[0]
        items = [
            _convert(inner, item, where, f"{path}[{i}]", problems) for i, item in enumerate(value)
        ]
        # An item with a problem is left out, so the rest can still be validated.
        return tuple(item for item in items if item is not None)
    if origin is dict and isinstance(value, dict):
        return dict(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return _convert_table(tp, value, where, path, problems)
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    problems.append(f"{where}: {path}: expected {_describe(tp)}, got {shown}")
    return None


def _convert_table(
    cls: type, table: dict[str, Any], where: str, path: str, problems: list[str]
) -> Any:
    hints = _hints(cls)
    fields = {_key(f): f for f in dataclasses.fields(cls) if f.name not in _NOT_KEYS}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{path}.{key}" if path else key
        f = fields.get(key)
        if f is None:
            known = ", ".join(sorted(fields))
            problems.append(f"{where}: {dotted}: unknown key (known keys: {known})")
            continue
        converted = _convert(hints[f.name], value, where, dotted, problems)
        if converted is not None:
            kwargs[f.name] = converted
    for key, f in fields.items():
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and f.name not in kwargs:
            dotted = f"{path}.{key}" if path else key
            problems.append(f"{where}: {dotted}: required, expected {_describe(hints[f.name])}")
    try:
        return cls(**kwargs)
    except TypeError:
        return None  # a required key is missing; already reported above


def _env_scalar(tp: Any, raw: str) -> Any:
    """Parse an environment string into ``tp``; raises ValueError when it does not fit."""
    if tp is str:
        return raw
    if tp is int:
        return int(raw)
    if tp is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError(raw)
    if typing.get_origin(tp) is tuple:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if typing.get_origin(tp) is dict:
        # NAME=VALUE,NAME=VALUE (e.g. Urgent=60,High=240); values typed as the table's.
        value_type = typing.get_args(tp)[1]
        table: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in raw.split(","))):
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(raw)
            table[name.strip()] = _env_scalar(value_type, value.strip())
        return table
    raise ValueError(raw)


def env_names(
    cls: type = Settings, prefix: str = ENV_PREFIX, path: str = ""
) -> list[tuple[str, str, Any]]:
    """Every ``(ENV_NAME, dotted.key, type)`` that the environment can override."""
    out: list[tuple[str, str, Any]] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in _NOT_KEYS:
            continue
        key = _key(f)
        tp = hints[f.name]
        dotted = f"{path}.{key}" if path else key
        name = f"{prefix}{key.upper()}"
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            out.extend(env_names(tp, name + "_", dotted))
        elif path and (typing.get_origin(tp) is not tuple or typing.get_args(tp)[0] is str):
            out.append((name, dotted, tp))
    return out


def _apply_env(
    data: dict[str, Any], env: Mapping[str, str], problems: list[str], where: str
) -> None:
    for name, dotted, tp in env_names():
        if name not in env:
            continue
        try:
            value = _env_scalar(tp, env[name])
        except ValueError:
            problems.append(f"${name}: {dotted}: expected {_describe(tp)}, got {env[name]!r}")
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"{where}: {part}: expected a table")
                break
            node = child
        else:
            node[leaf] = value
    _apply_mailbox_passwords(data, env)


def _apply_mailbox_passwords(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Mailbox passwords from ``MAILGATE_IMAP_<NAME>_PASSWORD``, else ``MAILGATE_IMAP_PASSWORD``."""
    imap = data.get("imap")
    if not isinstance(imap, dict) or not isinstance(imap.get("mailboxes"), list):
        return
    for box in imap["mailboxes"]:
        if not isinstance(box, dict) or not isinstance(box.get("name"), str):
            continue
        own = f"{ENV_PREFIX}IMAP_{box['name'].upper().replace('-', '_')}_PASSWORD"
        if own in env:
            box["password"] = env[own]
        elif f"{ENV_PREFIX}IMAP_PASSWORD" in env and not box.get("password"):
            box["password"] = env[f"{ENV_PREFIX}IMAP_PASSWORD"]
