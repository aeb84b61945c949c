"""``mailgate stats``: the desk at a glance."""

from __future__ import annotations

import click

from mailgate.cli.context import Context, utc_now
from mailgate.cli.output import emit_json
from mailgate.db import stats as desk_stats

pass_context = click.make_pass_decorator(Context)


@click.command()
@click.option(
    "--since",
    "since_days",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    metavar="DAYS",
    help="Period for response and resolution times.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@pass_context
def stats(ctx: Context, since_days: int, as_json: bool) -> None:
    """Open tickets by status, type, priority and assignee; first-response time
    (first response - created) and resolution time (closed - created), median
    and p90, over tickets first answered (or closed) in the last DAYS days; mail
    the receivers refused in those days, by reason; SLA breaches recorded in those
    days, and open tickets missing a target now."""
    with ctx.store.transaction() as session:
        result = desk_stats.compute(
            session, settings=ctx.settings, now=utc_now(), since_days=since_days
        )
    if as_json:
        emit_json(result)
        return
    opened = result["open"]
    click.echo(f"Open tickets: {opened['total']}")
    for key in ("status", "type", "priority", "assignee"):
        counts = opened[f"by_{key}"]
        shown = ", ".join(f"{name} {n}" for name, n in counts.items()) or "-"
        click.echo(f"  by {key:<9} {shown}")
    click.echo(f"Last {since_days} days:")
    for key, label in (("first_response", "first response"), ("resolution", "resolution")):
        s = result[key]
        click.echo(
            f"  {label:<15} median {desk_stats.duration(s['median_seconds'])}, "
            f"p90 {desk_stats.duration(s['p90_seconds'])} ({s['count']} tickets)"
        )
    rejected = result["rejected"]
    reasons = ", ".join(f"{name} {n}" for name, n in rejected["by_reason"].items())
    click.echo(f"  {'refused mail':<15} {rejected['total']}" + (f" ({reasons})" if reasons else ""))
    breached, missing = result["sla"]["breaches"], result["sla"]["open_in_breach"]
    click.echo(
        f"  SLA breaches    first response {breached['first_response']}, "
        f"resolution {breached['resolution']}"
    )
    click.echo(
        f"Open tickets in breach now: {missing['total']} (first response "
        f"{missing['first_response']}, resolution {missing['resolution']})"
    )
