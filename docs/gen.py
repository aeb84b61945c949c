"""Write docs/configuration.md and docs/cli.md from the code's own definitions.

Run from the repository root, after any change to a setting or a command:

    python3 -m docs.gen        (or: python3 docs/gen.py)

``configuration.md`` comes from the frozen dataclasses in ``mailgate/core/settings.py``
(sections, keys, types, defaults), the environment names ``mailgate.core.config`` reads,
and the comments of ``config.example.toml`` (read by docs/example_comments.py). ``cli.md``
comes from the click command tree, ``mailgate.cli.cli`` (docs/cli_reference.py).
tests/test_docs.py fails when the committed files differ from what this writes, so a new
key or option cannot go undocumented.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python3 docs/gen.py`: docs.* and mailgate, uninstalled

from docs.cli_reference import cli_reference  # noqa: E402 - after the path is set
from docs.example_comments import Comments, more, read_example  # noqa: E402
from docs.markdown import GENERATED  # noqa: E402
from docs.markdown import cell as _cell  # noqa: E402
from docs.markdown import code as _code  # noqa: E402
from docs.markdown import text as _text  # noqa: E402

EXAMPLE = REPO / "config.example.toml"
CONFIGURATION = DOCS / "configuration.md"
CLI = DOCS / "cli.md"


# ---------------------------------------------------------------------------------------
# Settings: the dataclasses


def _key(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("key", f.name))


def _is_table(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _table_array(tp: Any) -> type | None:
    """The element dataclass of ``tuple[Element, ...]``, else None."""
    if typing.get_origin(tp) is tuple:
        inner = typing.get_args(tp)[0]
        if _is_table(inner):
            return typing.cast(type, inner)
    return None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is str:
        return "string"
    if tp is int:
        return "integer"
    if tp is bool:
        return "boolean"
    if origin is tuple:
        return "array of tables" if _table_array(tp) else "array of strings"
    if origin is dict:
        value = typing.get_args(tp)[1]
        return "table of integers" if value is int else "table"
    return str(tp)


def _toml(value: Any) -> str:
    """``value`` as a TOML literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_bare(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if dataclasses.is_dataclass(value):
        pairs = [f"{_key(f)} = {_toml(getattr(value, f.name))}" for f in dataclasses.fields(value)]
        return "{ " + ", ".join(pairs) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def _bare(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml(key)


def _default(f: dataclasses.Field[Any]) -> Any:
    """The field's default value, or ``dataclasses.MISSING`` when it is required."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


@dataclass(frozen=True)
class _Table:
    """One TOML table of the settings: ``[path]``, or ``[[path]]`` for an array of tables."""

    path: str
    cls: type
    array: bool
    default: tuple[Any, ...] = ()


def _tables(cls: type, path: str = "") -> Iterator[_Table]:
    """Every table under ``cls``, parents before children, in field order."""
    from mailgate.core import config

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in config._NOT_KEYS:
            continue
        tp = hints[f.name]
        dotted = f"{path}.{_key(f)}" if path else _key(f)
        if _is_table(tp):
            yield _Table(dotted, tp, array=False)
            yield from _tables(tp, dotted)
        elif (element := _table_array(tp)) is not None:
            yield _Table(dotted, element, array=True, default=tuple(_default(f)))
            yield from _tables(element, dotted)


def _scalar_fields(cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    """The fields of ``cls`` that are keys of its own table (not tables themselves)."""
    from mailgate.core import config

    hints = typing.get_type_hints(cls)
    return [
        (f, hints[f.name])
        for f in dataclasses.fields(cls)
        if f.name not in config._NOT_KEYS
        and not _is_table(hints[f.name])
        and _table_array(hints[f.name]) is None
    ]


# ---------------------------------------------------------------------------------------
# configuration.md


def configuration() -> str:
    """The text of docs/configuration.md."""
    from mailgate.core import config
    from mailgate.core.settings import Settings

    tables = list(_tables(Settings))
    classes = {"": Settings, **{t.path: t.cls for t in tables}}
    comments = read_example(
        EXAMPLE.read_text(encoding="utf-8"),
        {path: {_key(f) for f in dataclasses.fields(cls)} for path, cls in classes.items()},
    )
    env = {dotted: name for name, dotted, _ in config.env_names()}
    descriptions = _descriptions(tables, comments)
    prefix = config.ENV_PREFIX
    out = [
        "# Configuration reference",
        "",
        GENERATED.format(sources="mailgate/core/settings.py and config.example.toml"),
        "",
        "mailgate reads one TOML file: the one given with `--config PATH`, else the one "
        f"named by `${config.CONFIG_ENV}`, else `./{config.DEFAULT_FILE}` if it exists, "
        "else none (the built-in defaults below). `mailgate init` writes a commented file "
        "with a fresh `security.secret`; `mailgate check-config` validates one and prints "
        "every problem as `file: section.key: what was expected`. A key that is not listed "
        "here is an error, not ignored.",
        "",
        f"Every key of a section can also be set by an environment variable "
        f"`{prefix}<SECTION>_<KEY>` in upper case, named in the Environment column; it wins "
        "over the file. In the environment, an array of "
        "strings is comma-separated (`a,b`), a table of integers is `NAME=N,NAME=N`, and a "
        "boolean is `true`/`false`, `yes`/`no`, `on`/`off` or `1`/`0`. Arrays of tables "
        "(`[[imap.mailboxes]]`, `[[teams]]`, `[[agents]]`, `[[customers]]`, `[[rules]]`, "
        "`tickets.statuses`) can only be set in the file, except IMAP passwords: "
        f"`{prefix}IMAP_<NAME>_PASSWORD` for the mailbox named NAME (upper case, `-` as "
        f"`_`), else `{prefix}IMAP_PASSWORD` for any mailbox whose file gives none.",
        "",
        "`security.secret` is required whenever a config file is read. A required key of an "
        "array of tables has no default and is marked so.",
        "",
        *_preamble(comments),
        "Sections: " + ", ".join(_code(_header(t)) for t in tables if _listed(t)) + ".",
        "",
    ]
    for t in tables:
        if not _listed(t):
            continue
        out += [f"## {_code(_header(t))}", ""]
        if t.path in comments.intro:
            out += [_text(comments.intro[t.path]), ""]
        if t.array:
            out += [_array_default(t), ""]
        rows = _scalar_fields(t.cls)
        rows.sort(key=lambda r: comments.position.get(f"{t.path}.{_key(r[0])}", 1 << 30))
        if not rows:
            continue
        if t.array:
            out += ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
        else:
            out += [
                "| Key | Type | Default | Environment | Description |",
                "| --- | --- | --- | --- | --- |",
            ]
        for f, tp in rows:
            dotted = f"{t.path}.{_key(f)}"
            default = _default(f)
            shown = "required" if default is dataclasses.MISSING else _code(_toml(default))
            cells = [_code(_key(f)), _type_name(tp), shown]
            if not t.array:
                cells.append(_code(env[dotted]) if dotted in env else "")
            cells.append(_text(descriptions.get(dotted, "")))
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _descriptions(tables: list[_Table], comments: Comments) -> dict[str, str]:
    keys = {f"{t.path}.{_key(f)}" for t in tables for f, _ in _scalar_fields(t.cls)}
    out = dict(comments.description)
    for dotted, text in more().items():
        if dotted not in keys:
            raise SystemExit(f"docs/gen.py: more() describes {dotted}, which is no setting")
        if dotted in out:
            raise SystemExit(
                f"docs/gen.py: config.example.toml now describes {dotted}: "
                "delete its entry in more()"
            )
        out[dotted] = text
    return out


def _preamble(comments: Comments) -> list[str]:
    """The header comment of config.example.toml, quoted."""
    if not comments.preamble:
        return []
    quoted = [f"> {_text(para)}" for para in comments.preamble]
    return ["The header of `config.example.toml` says:", "", "\n>\n".join(quoted), ""]


def _header(t: _Table) -> str:
    return f"[[{t.path}]]" if t.array else f"[{t.path}]"


def _listed(t: _Table) -> bool:
    """A table with keys of its own, or an array of tables; ``[imap]`` only holds
    ``[[imap.mailboxes]]`` and is documented there."""
    return t.array or bool(_scalar_fields(t.cls))


def _array_default(t: _Table) -> str:
    if not t.default:
        return "Default: none."
    blocks = []
    for item in t.default:
        lines = [f"[[{t.path}]]"]
        lines += [f"{_key(f)} = {_toml(getattr(item, f.name))}" for f in dataclasses.fields(item)]
        blocks.append("\n".join(lines))
    return "Default:\n\n```toml\n" + "\n\n".join(blocks) + "\n```"


# ---------------------------------------------------------------------------------------


def render() -> dict[Path, str]:
    """Every generated file and the text it must hold."""
    return {CONFIGURATION: configuration(), CLI: cli_reference()}


def main() -> int:
    for path, text in render().items():
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
        else:
            print(f"{path.relative_to(REPO)} unchanged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
