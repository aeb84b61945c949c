"""``mailgate worker``: process stored mail and send notices from the queue."""

from __future__ import annotations

import click

from mailgate.cli.context import Context
from mailgate.jobs.broker import is_embedded, queue_names
from mailgate.ops.worker import run_workers

pass_context = click.make_pass_decorator(Context)


@click.command()
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    help="Threads per process.  [default: 4; 1 on SQLite, which lets one writer in at a "
    "time: more threads would only queue for its lock]",
)
@click.option("--burst", is_flag=True, help="Do what is due now, then exit.")
@pass_context
def worker(ctx: Context, processes: int, threads: int | None, burst: bool) -> None:
    """Process inbound messages, send notices and run the SLA check (every
    sla.check_interval_seconds) until SIGTERM (or, with --burst, until nothing is
    due). SIGTERM lets each message in hand finish first."""
    settings = ctx.settings
    # What the worker writes waits for the receivers' acknowledgements (db.write_turns).
    ctx.background_writes = True
    # Schema check and directory sync happen once, here, before any child starts.
    store = ctx.store
    if threads is None:
        threads = 1 if store.is_sqlite else 4
    if processes > 1:
        store.engine.dispose()
    if not burst:
        names = queue_names(settings)
        where = (
            "embedded (database polling)"
            if is_embedded(settings)
            else f"{settings.queue.broker.split(':', 1)[0]} queues {names.inbound}, {names.notices}"
        )
        click.echo(f"mailgate worker: {processes} x {threads} threads, {where}", err=True)
    code = run_workers(
        settings,
        processes=processes,
        threads=threads,
        burst=burst,
        store=store if processes == 1 else None,
    )
    if code:
        raise SystemExit(code)
