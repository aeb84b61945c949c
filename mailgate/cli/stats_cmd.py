"""``mailgate stats``: the desk at a glance."""

from __future__ import annotations

import csv
import sys
from typing import Any

import click

from mailgate.cli.context import Context, utc_now
from mailgate.cli.output import emit_json
from mailgate.db import reports
from mailgate.db import stats as desk_stats

pass_context = click.make_pass_decorator(Context)
OPEN_KEYS = ("status", "type", "priority", "assignee", "customer", "team")
OPENED_KEYS = ("customer", "team", "type", "priority")


def _print_counts(title: str, counts: dict[str, Any], keys: tuple[str, ...]) -> None:
    click.echo(title)
    for key in keys:
        shown = ", ".join(f"{name} {n}" for name, n in counts[f"by_{key}"].items()) or "-"
        click.echo(f"  by {key:<9} {shown}")


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
@click.option("--team", metavar="TEAM", help="Only this team's tickets.")
@click.option("--customer", metavar="ACCOUNT", help="Only this customer account's tickets.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option(
    "--csv",
    "as_csv",
    is_flag=True,
    help="The per-day series as CSV (date, opened, closed, backlog, "
    "first_response_median_seconds), for a spreadsheet.",
)
@pass_context
def stats(
    ctx: Context,
    since_days: int,
    team: str | None,
    customer: str | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Open tickets by status, type, priority, assignee, customer account and team;
    tickets opened in the last DAYS days by account, team, type and priority;
    first-response time (first response - created) and resolution time (closed -
    created), median and p90, over tickets first answered (or closed) in those days;
    mail the receivers refused, by reason; SLA breaches recorded in those days, and
    open tickets missing a target now; time logged on tickets (`tickets activity`) by
    type, agent, customer account and ticket. --json adds the per-day series (opened,
    closed, backlog at the end of the day, first-response median; UTC days). --team
    and --customer narrow every figure to one team's or customer account's tickets."""
    if as_json and as_csv:
        raise click.UsageError("give one of --json or --csv")
    with ctx.store.transaction() as session:
        result = desk_stats.compute(
            session,
            settings=ctx.settings,
            now=utc_now(),
            since_days=since_days,
            team=team,
            customer=customer,
        )
    if as_json:
        emit_json(result)
        return
    if as_csv:
        out = csv.DictWriter(sys.stdout, fieldnames=reports.CSV_COLUMNS, lineterminator="\n")
        out.writeheader()
        out.writerows(result["daily"])
        return
    _print_counts(f"Open tickets: {result['open']['total']}", result["open"], OPEN_KEYS)
    _print_counts(
        f"Opened in the last {since_days} days: {result['opened']['total']}",
        result["opened"],
        OPENED_KEYS,
    )
    click.echo(f"Last {since_days} days:")
    logged = result["activities"]
    click.echo(
        f"  {'time logged':<15} {desk_stats.duration(logged['total_minutes'] * 60.0)}"
        f" ({logged['count']} activities)"
    )
    for key in ("type", "agent", "customer", "ticket"):
        shown = ", ".join(
            f"{name} {desk_stats.duration(m * 60.0)}" for name, m in logged[f"by_{key}"].items()
        )
        if shown:
            click.echo(f"    by {key:<11} {shown}")
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
