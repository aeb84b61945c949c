"""``mailgate web``, ``mailgate agents set-password`` and ``mailgate api-tokens``."""

from __future__ import annotations

import sys

import click

from mailgate.cli.context import Context, utc_now
from mailgate.cli.output import emit_json, emit_table

pass_context = click.make_pass_decorator(Context)


@click.command()
@click.option("--listen", metavar="HOST:PORT", help="Overrides web.listen.")
@pass_context
def web(ctx: Context, listen: str | None) -> None:
    """Serve the portal and the JSON API (web.listen, default 127.0.0.1:8080)."""
    from mailgate.web.server import serve

    settings = ctx.settings
    click.echo(f"portal on {listen or settings.web.listen}, public address {settings.web.base_url}")
    serve(settings, ctx.store, listen=listen)


@click.command("set-password")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)
@pass_context
def set_password(ctx: Context, email: str, password_stdin: bool) -> None:
    """Set the portal password of agent EMAIL (stored as an argon2 hash)."""
    from mailgate.web.passwords import set_password as store_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with ctx.store.transaction() as session:
        agent = store_password(session, email, password, utc_now())
        address = agent.email
    click.echo(f"password set for {address}")


@click.group("api-tokens")
def api_tokens() -> None:
    """Bearer tokens for integrations using the JSON API."""


@api_tokens.command("add")
@click.argument("name")
@click.option(
    "--agent",
    metavar="AGENT",
    help="Make it this agent's token: calls act as the agent, with staff rights.",
)
@pass_context
def add(ctx: Context, name: str, agent: str | None) -> None:
    """Make a token for integration NAME and print it once; only its hash is kept."""
    from mailgate.web import api_tokens as tokens

    with ctx.store.transaction() as session:
        token = tokens.add(session, name, utc_now(), agent=agent)
    click.echo(token)
    click.echo(f"token {name!r} made; it is shown this once, keep it safe", err=True)


@api_tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects, for scripts.")
@pass_context
def list_(ctx: Context, as_json: bool) -> None:
    """Token names and dates (never the tokens)."""
    from mailgate.web import api_tokens as tokens

    with ctx.store.transaction() as session:
        rows = tokens.listing(session)
    if as_json:
        emit_json(rows)
        return
    columns = (
        ("name", "NAME"),
        ("agent", "AGENT"),
        ("created_at", "CREATED"),
        ("last_used_at", "LAST USED"),
        ("revoked_at", "REVOKED"),
    )
    emit_table(rows, columns, empty="no API tokens")


@api_tokens.command("revoke")
@click.argument("name")
@pass_context
def revoke(ctx: Context, name: str) -> None:
    """Stop the token of integration NAME from working."""
    from mailgate.web import api_tokens as tokens

    with ctx.store.transaction() as session:
        tokens.revoke(session, name, utc_now())
    click.echo(f"token {name!r} revoked")
