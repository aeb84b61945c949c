"""``mailgate responses``: the canned responses agents reply with."""

from __future__ import annotations

from typing import TextIO

import click

from mailgate.cli.context import Context, utc_now
from mailgate.cli.output import emit_json, emit_table, limit_option
from mailgate.tickets import canned_responses as responses
from mailgate.tickets.canned_text import PLACEHOLDERS

pass_context = click.make_pass_decorator(Context)


@click.group("responses")
def responses_group() -> None:
    """Canned responses: add, list, show, remove.

    Reply with one: mailgate tickets reply NUMBER --response NAME."""


ADD_HELP = (
    "Save response NAME (lower-case letters, digits, _ . -) from --file.\n\n"
    "The text may use these placeholders, filled in when it is sent (nothing else of "
    "jinja2: no filters, blocks or calls):\n\n\b\n"
    + "\n".join(f"  {{{{ {p} }}}}" for p in PLACEHOLDERS)
)


@responses_group.command("add", help=ADD_HELP)
@click.argument("name")
@click.option(
    "--file", "source", type=click.File("r"), required=True, help="The text; - for stdin."
)
@click.option("--replace", is_flag=True, help="Overwrite a response of the same name.")
@click.option(
    "--as",
    "as_",
    default="cli",
    show_default=True,
    metavar="WHO",
    help="Who wrote it, recorded as created_by.",
)
@pass_context
def add(ctx: Context, name: str, source: TextIO, replace: bool, as_: str) -> None:
    body = source.read()
    with ctx.store.transaction() as session:
        row, replaced = responses.add(
            session, name, body, by=as_.strip() or "cli", at=utc_now(), replace=replace
        )
        shown = row.name
    click.echo(f"response {shown} {'replaced' if replaced else 'added'}")


@responses_group.command("list")
@limit_option("responses")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects, for scripts.")
@pass_context
def list_(ctx: Context, limit: int, as_json: bool) -> None:
    """Responses, newest first."""
    with ctx.store.transaction() as session:
        rows = responses.list_all(session, limit=limit)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["first_line"] = row["body"].splitlines()[0]
    columns = (
        ("name", "NAME"),
        ("updated_at", "UPDATED"),
        ("created_by", "BY"),
        ("first_line", "TEXT"),
    )
    emit_table(rows, columns, empty="no canned responses")


@responses_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@pass_context
def show(ctx: Context, name: str, as_json: bool) -> None:
    """One response's text, as stored (placeholders not filled in)."""
    with ctx.store.transaction() as session:
        row = responses.show(session, name)
    if as_json:
        emit_json(row)
        return
    click.echo(row["body"])


@responses_group.command("remove")
@click.argument("name")
@pass_context
def remove(ctx: Context, name: str) -> None:
    """Delete response NAME (replies already sent with it keep their text)."""
    with ctx.store.transaction() as session:
        responses.remove(session, name)
    click.echo(f"response {name} removed")
