"""a million tickets: indexes for the queue, stats and the rate limit; notices.rate_key

Revision ID: 0010_scale_indexes
Revises: 0009_credential_generation
Create Date: 2026-12-01 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0010_scale_indexes'
down_revision: Union[str, Sequence[str], None] = '0009_credential_generation'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Rows read per round of the rate_key backfill: bounded memory on a large outbox.
_BATCH = 10_000


def upgrade() -> None:
    """Upgrade schema."""
    # Measured in benchmarks/scale.py (issue 23): the agent queue reads each status newest
    # first, alone or with its team or assignee, instead of walking every ticket to find
    # a page of open ones; the two dates bound `mailgate stats`' period queries, which
    # scanned the table. The three compound indexes replace the single-column ones they
    # begin with.
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_status')
        batch_op.drop_index('ix_tickets_team_id')
        batch_op.drop_index('ix_tickets_assignee_id')
        batch_op.create_index('ix_tickets_status_id', ['status', 'id'], unique=False)
        batch_op.create_index(
            'ix_tickets_team_id_status_id', ['team_id', 'status', 'id'], unique=False
        )
        batch_op.create_index(
            'ix_tickets_assignee_id_status_id', ['assignee_id', 'status', 'id'], unique=False
        )
        batch_op.create_index(
            batch_op.f('ix_tickets_first_response_at'), ['first_response_at'], unique=False
        )
        batch_op.create_index(batch_op.f('ix_tickets_closed_at'), ['closed_at'], unique=False)
    # The mailbox the hourly limit counts, beside the recipient: the limit read every
    # notice an address was ever sent (its plus spellings by a LIKE no index serves).
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('rate_key', sa.String(length=320), nullable=False, server_default='')
        )
    _fill_rate_keys()
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index('ix_notices_recipient')
        batch_op.create_index(
            'ix_notices_recipient_created_at', ['recipient', 'created_at'], unique=False
        )
        batch_op.create_index(
            'ix_notices_rate_key_created_at', ['rate_key', 'created_at'], unique=False
        )


def rate_key(address: str) -> str:
    """``mailgate.core.notices.rate_key`` as it is at this revision, copied so that this
    migration keeps doing what it did: lower case, plus-detail (RFC 5233) dropped."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.partition('+')[0]}@{domain}"


def _fill_rate_keys() -> None:
    """rate_key for the notices already there, computed in Python as for new rows (SQL's
    lower() is not Python's): most equal the recipient, which mailgate writes in lower
    case, so one UPDATE sets them all and only the others are written one by one."""
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE notices SET rate_key = recipient"))
    last = 0
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT id, recipient FROM notices WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            return
        changed = [
            {"id": row_id, "key": rate_key(recipient)}
            for row_id, recipient in rows
            if rate_key(recipient) != recipient
        ]
        if changed:
            conn.execute(sa.text("UPDATE notices SET rate_key = :key WHERE id = :id"), changed)
        last = rows[-1][0]


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index('ix_notices_rate_key_created_at')
        batch_op.drop_index('ix_notices_recipient_created_at')
        batch_op.create_index(batch_op.f('ix_notices_recipient'), ['recipient'], unique=False)
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_column('rate_key')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_closed_at'))
        batch_op.drop_index(batch_op.f('ix_tickets_first_response_at'))
        batch_op.drop_index('ix_tickets_assignee_id_status_id')
        batch_op.drop_index('ix_tickets_team_id_status_id')
        batch_op.drop_index('ix_tickets_status_id')
        batch_op.create_index(batch_op.f('ix_tickets_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_team_id'), ['team_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_status'), ['status'], unique=False)
