"""``mailgate notices``: the operator's view of the outbox, retrying what failed, and
trying a chat channel or webhook."""

from __future__ import annotations

import click
from sqlalchemy import update

from mailgate.cli.context import Context, utc_now
from mailgate.cli.output import emit_json, emit_table, limit_option
from mailgate.core.errors import MailgateError, NotFound
from mailgate.core.states import NoticeState
from mailgate.db import mail_queries
from mailgate.db.models import Notice
from mailgate.outbound.sender import send_many, send_pending

pass_context = click.make_pass_decorator(Context)

STATES = tuple(s.value for s in NoticeState)
LIST_COLUMNS = (
    ("id", "ID"),
    ("ticket", "TICKET"),
    ("kind", "KIND"),
    ("channel", "CHANNEL"),
    ("state", "STATE"),
    ("attempts", "TRIES"),
    ("recipient", "RECIPIENT"),
    ("created_at", "CREATED"),
    ("last_error", "LAST ERROR"),
)


@click.group()
def notices() -> None:
    """List, send and retry outbound notices."""


@notices.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only notices in this state.")
@limit_option("notices")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects, for scripts.")
@pass_context
def list_(ctx: Context, state: str | None, limit: int, as_json: bool) -> None:
    """Notices, newest first. CHANNEL is the chat channel or webhook a row goes to,
    "-" for mail."""
    with ctx.store.transaction() as session:
        rows = mail_queries.list_notices(session, state=state, limit=limit)
    if as_json:
        emit_json(rows)
    else:
        shown = [{**row, "channel": row["channel"] or "-"} for row in rows]
        emit_table(shown, LIST_COLUMNS, empty="no notices")


@notices.command()
@click.argument("notice_id", type=int)
@pass_context
def retry(ctx: Context, notice_id: int) -> None:
    """Send a failed or bounced notice again now (with the same Message-ID)."""
    with ctx.store.transaction() as session:
        notice = session.get(Notice, notice_id)
        if notice is None:
            raise NotFound(f"no notice #{notice_id}")
        if notice.state == NoticeState.SENT:
            raise MailgateError(f"notice #{notice_id} was already sent; not sending it twice")
        if notice.state == NoticeState.SUPPRESSED:
            raise MailgateError(
                f"notice #{notice_id} was suppressed ({notice.last_error}); it must not be sent"
            )
        session.execute(
            update(Notice)
            .where(Notice.id == notice_id)
            .values(state=NoticeState.PENDING, next_attempt_at=utc_now(), attempts=0)
        )
    report = send_many(ctx.store, [notice_id], settings=ctx.settings, now=utc_now)
    with ctx.store.transaction() as session:
        notice = session.get_one(Notice, notice_id)
        state, error = notice.state, notice.last_error
    click.echo(f"notice #{notice_id}: {state}" + (f" ({error})" if error else ""))
    if not report.sent:
        raise SystemExit(75 if state == NoticeState.PENDING else 1)


@notices.command()
@click.option("--limit", default=100, show_default=True, help="At most N notices; 0 for all.")
@pass_context
def send(ctx: Context, limit: int) -> None:
    """Send every pending notice whose time has come.

    Exits 1 when any of them failed for good (the others are still sent)."""
    report = send_pending(ctx.store, settings=ctx.settings, now=utc_now, limit=limit)
    click.echo(
        f"{report.sent} sent, {report.retrying} to retry later, {report.failed} failed, "
        f"{report.skipped} skipped"
    )
    if report.failed:
        # The rest of the batch went out; the exit code says some did not (`notices list
        # --state failed` shows which, with the reason).
        raise SystemExit(1)


@notices.command("test-channel")
@click.argument("name")
@pass_context
def test_channel(ctx: Context, name: str) -> None:
    """Send a harmless test message to the chat channel or webhook NAME now.

    Not through the outbox: nothing is stored. Prints the HTTP status; exits 1 when
    NAME is unknown, its variables are not set or the service refuses."""
    from mailgate.outbound.chat_delivery import send_test

    try:
        status = send_test(ctx.settings, name, now=utc_now())
    except NotFound:
        raise  # names the channels there are; exit 1
    except MailgateError as exc:  # a refusal, a timeout or an unset variable alike: exit 1
        click.echo(f"mailgate: test message to {name} failed: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(f"{name}: HTTP {status}, test message sent")
