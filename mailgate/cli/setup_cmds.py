"""Commands that set mailgate up: ``init``, ``check-config``, ``db``."""

from __future__ import annotations

import secrets
from importlib.resources import files
from pathlib import Path

import click

from mailgate.cli.context import Context
from mailgate.core import config
from mailgate.core.errors import EX_CONFIG, ConfigError, MailgateError
from mailgate.db.store import Store

pass_context = click.make_pass_decorator(Context)


@click.command()
@click.argument("path", default=config.DEFAULT_FILE, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: str, force: bool) -> None:
    """Write a commented config file (default ./mailgate.toml) with a fresh secret."""
    target = Path(path)
    if target.exists() and not force:
        raise MailgateError(f"{target}: already exists (use --force to overwrite)")
    template = (files("mailgate") / "example_config.toml").read_text(encoding="utf-8")
    secret = secrets.token_urlsafe(48)
    text = template.replace('secret = ""', f'secret = "{secret}"', 1)
    try:
        target.write_text(text, encoding="utf-8")
        target.chmod(0o600)  # it holds the HMAC secret
    except OSError as exc:
        raise MailgateError(f"{target}: cannot write: {exc.strerror}") from None
    click.echo(f"wrote {target} (with a new random security.secret; keep this file private)")


@click.command("check-config")
@pass_context
def check_config(ctx: Context) -> None:
    """Validate the config file; print every problem as file: section.key: expected."""
    from mailgate.core.validation import warnings
    from mailgate.outbound.render import check_templates

    try:
        settings, problems = config.inspect(config.resolve_path(ctx.config_path))
    except ConfigError as exc:  # the file cannot be read or parsed: nothing more to check
        settings, problems = None, exc.problems
    if settings is not None:
        problems += [
            f"{settings.source}: {problem}"
            for problem in check_templates(
                settings.outbound.templates, default_language=settings.defaults.language
            )
        ]
    for problem in problems:
        click.echo(problem, err=True)
    if problems or settings is None:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        raise SystemExit(EX_CONFIG)
    for warning in warnings(settings, settings.source):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{settings.source}: OK")


@click.group()
def db() -> None:
    """Database schema migrations (Alembic) and upkeep."""


@db.command()
@pass_context
def upgrade(ctx: Context) -> None:
    """Apply every pending migration."""
    store = Store(ctx.settings.database.url)
    before, after = store.upgrade()
    if before == after:
        click.echo(f"database already at revision {after}")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to {after}")


@db.command()
@pass_context
def current(ctx: Context) -> None:
    """Print the schema revision of the database and the one this mailgate needs."""
    ctx.require_database()
    store = Store(ctx.settings.database.url)
    now, head = store.current_revision(), store.head_revision()
    state = "up to date" if now == head else "needs `mailgate db upgrade`"
    click.echo(f"database at {now or 'empty'}, code needs {head}: {state}")


@db.command()
@pass_context
def optimize(ctx: Context) -> None:
    """Merge the search index into one piece (SQLite), or fold in its pending entries
    and refresh the planner's statistics (PostgreSQL): after a large import, or weekly.
    Mail keeps flowing meanwhile: each step is a short transaction of its own."""
    from mailgate.db.maintenance import optimize as optimize_search

    for done in optimize_search(ctx.store):
        took = f"{done.seconds:.1f} s"
        if done.segments_before is None:
            click.echo(f"{done.source}: analyzed, pending index entries folded in ({took})")
        elif done.segments_before <= 1:
            state = "one index segment" if done.segments_before else "empty"
            click.echo(f"{done.source}: {state}, nothing to merge")
        else:
            click.echo(
                f"{done.source}: {done.segments_before} index segments merged into "
                f"{done.segments_after} ({done.steps} steps, {took})"
            )
