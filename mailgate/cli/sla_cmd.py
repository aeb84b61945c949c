"""``mailgate sla check``: one pass of the SLA check, for cron and by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from mailgate import jobs
from mailgate.cli.context import Context, utc_now
from mailgate.cli.output import emit_json
from mailgate.core import sla as sla_kinds
from mailgate.outbound.sender import send_now
from mailgate.tickets import sla_check

pass_context = click.make_pass_decorator(Context)


@click.group()
def sla() -> None:
    """SLA targets and ticket dates (see [sla] in the config)."""


@sla.command()
@click.option(
    "--now",
    "at",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]),
    metavar="ISO",
    help="Check as of this UTC time instead of the clock (tests, replays).",
)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of fired events.")
@pass_context
def check(ctx: Context, at: datetime | None, as_json: bool) -> None:
    """Fire every due event once: history entry, and a content-free reminder to the
    assignee; remind the assignee of each overdue open to-do once. The worker does this
    every sla.check_interval_seconds; events already fired and to-dos already reminded
    (by any worker or an earlier check) are never fired or reminded again."""
    settings = ctx.settings
    if not settings.sla.enabled:
        click.echo("sla checks are off (sla.enabled = false); nothing checked", err=True)
        return
    now = at.replace(tzinfo=UTC) if at else utc_now()
    report = sla_check.run_check(ctx.store, settings, now)
    ids = report.notice_ids
    if ids and jobs.is_embedded(settings):
        send_now(ctx.store, ids, settings=settings, now=lambda: now if at else utc_now())
    # With a broker, the store queued them as they committed (Context.store).
    rows = [
        {
            "ticket": f.number,
            "kind": f.kind,
            "due_at": f.due_at.isoformat(),
            "breached": f.kind in sla_kinds.BREACH_KINDS,
            "notice_id": f.notice_id,
        }
        for f in report.fired
    ]
    # Overdue to-dos reminded by this pass: kind "todo", with the to-do's id.
    todos = [
        {
            "ticket": r.number,
            "kind": "todo",
            "todo": r.todo_id,
            "due_at": r.due_at.isoformat(),
            "breached": False,
            "notice_id": r.notice_id,
        }
        for r in report.reminded
    ]
    if as_json:
        emit_json(rows + todos)
        return
    for row in rows:
        told = f"reminder notice {row['notice_id']}" if row["notice_id"] else "no reminder"
        click.echo(f"ticket #{row['ticket']}: {row['kind']} due {row['due_at']}, {told}")
    for row in todos:
        told = f"reminder notice {row['notice_id']}" if row["notice_id"] else "no reminder"
        where = f" (ticket #{row['ticket']})" if row["ticket"] else ""
        click.echo(f"to-do {row['todo']}{where}: due {row['due_at']}, {told}")
    click.echo(f"sla check: {len(rows)} due event(s) fired, {len(todos)} overdue to-do(s) reminded")
