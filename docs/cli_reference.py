"""docs/cli.md: the click command tree, ``mailgate.cli.cli``, as Markdown (docs/gen.py
writes it)."""

from __future__ import annotations

import inspect
import re
from typing import Any

from docs.markdown import GENERATED
from docs.markdown import cell as _cell
from docs.markdown import code as _code
from docs.markdown import paragraph as _paragraph
from docs.markdown import text as _text


def _help_paragraphs(text: str) -> list[str]:
    """click's help text as Markdown paragraphs: a paragraph marked ``\\b`` keeps its
    lines (a code block), the others are joined into one line each."""
    text = inspect.cleandoc(text).partition("\f")[0]
    out = []
    for para in re.split(r"\n\s*\n", text):
        if not para.strip():
            continue
        if para.startswith("\b"):
            lines = para.split("\n")[1:]
            out.append("```text\n" + inspect.cleandoc("\n".join(lines)) + "\n```")
        else:
            out.append(_paragraph(" ".join(para.split())))
    return out


def _summary(cmd: Any) -> str:
    """A command's ``short_help``, else the first paragraph of its help (click's own short
    form stops at the first full stop, even in "e.g.")."""
    if cmd.short_help:
        return str(cmd.short_help)
    text = inspect.cleandoc(cmd.help or "").partition("\f")[0]
    return " ".join(re.split(r"\n\s*\n", text)[0].split())


def _command(cmd: Any, ctx: Any, depth: int) -> list[str]:
    import click

    out = [f"{'#' * max(2, min(depth, 4))} {_code(ctx.command_path)}", ""]
    usage = " ".join([ctx.command_path, *cmd.collect_usage_pieces(ctx)])
    out += ["```text", usage, "```", ""]
    for para in _help_paragraphs(cmd.help or ""):
        out += [para, ""]
    arguments = [p for p in cmd.params if isinstance(p, click.Argument)]
    if arguments:
        out += ["Arguments:", ""]
        for p in arguments:
            need = "required" if p.required else "optional"
            many = ", repeatable" if p.nargs == -1 else ""
            out.append(f"- {_code(p.make_metavar(ctx))}: {need}{many}")
        out.append("")
    help_option = cmd.get_help_option(ctx)
    options = [
        p
        for p in cmd.get_params(ctx)
        if isinstance(p, click.Option) and p is not help_option and not p.hidden
    ]
    if options:
        out += ["Options:", ""]
        for p in options:
            record = p.get_help_record(ctx)
            if record is None:
                continue
            names, text = record
            line = f"- {_code(names)}"
            if text:
                line += ": " + _text(" ".join(text.split()))
            out.append(line)
        out.append("")
    if isinstance(cmd, click.Group):
        names = [n for n in cmd.list_commands(ctx) if not cmd.get_command(ctx, n).hidden]
        out += ["| Command | Does |", "| --- | --- |"]
        for name in names:
            summary = _summary(cmd.get_command(ctx, name))
            out.append(f"| {_cell(_code(name))} | {_cell(_text(summary))} |")
        out.append("")
        for name in names:
            sub = cmd.get_command(ctx, name)
            sub_ctx = click.Context(sub, info_name=name, parent=ctx, **sub.context_settings)
            out += _command(sub, sub_ctx, depth + 1)
    return out


def cli_reference() -> str:
    """The text of docs/cli.md."""
    import click

    from mailgate.cli import cli

    ctx = click.Context(cli, info_name="mailgate", **cli.context_settings)
    help_names = " or ".join(_code(n) for n in ctx.help_option_names)
    out = [
        "# Command-line reference",
        "",
        GENERATED.format(sources="the click commands in mailgate/cli/"),
        "",
        "Everything is one command, `mailgate` (or `python3 -m mailgate`), with subcommands. "
        f"Every command and subcommand takes {help_names} and prints what is below. The "
        "options of `mailgate` itself (`--config`, `--verbose`) come before the subcommand: "
        "`mailgate --config /etc/mailgate/mailgate.toml worker --burst`.",
        "",
        "Errors are one line on standard error starting with `mailgate:`, never a "
        "traceback (`-v` logs the details). The exit code says what kind of failure it was; "
        "the codes of `sysexits.h` (65, 75) are the ones an MTA's pipe understands:",
        "",
        *_exit_codes(),
        "",
    ]
    out += _command(cli, ctx, 1)
    return "\n".join(out).rstrip("\n") + "\n"


def _exit_codes() -> list[str]:
    """A table of exit codes from mailgate.core.errors: each error class by its code."""
    from mailgate.core import errors

    by_code: dict[int, list[type]] = {}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.MailgateError):
            by_code.setdefault(value.exit_code, []).append(value)
    rows = ["| Exit | Error | When |", "| --- | --- | --- |", "| 0 | | Success. |"]
    for code in sorted({*by_code, errors.EX_SOFTWARE}):
        if code == errors.EX_SOFTWARE and code not in by_code:
            rows.append(f"| {code} | | An internal error (a bug): the line names it. |")
            continue
        for cls in sorted(by_code[code], key=lambda c: len(c.__mro__)):
            if cls is errors.MailgateError:
                first = "Any other error mailgate reports; the line says what."
            else:
                doc = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
                first = re.sub(r"^Raised (when|for) ", "", doc)
                first = first[:1].upper() + first[1:]
            rows.append(f"| {code} | {_code(cls.__name__)} | {_cell(_text(first))} |")
    rows.append("| 130 | | Interrupted (Ctrl-C). |")
    if errors.EX_CONFIG == 2:
        rows += ["", "Usage errors (an unknown option, a missing argument) also exit 2."]
    return rows
