"""SLA: due events fired once each (targets breached, ticket dates reached)

Revision ID: 0006_sla
Revises: 0005_web
Create Date: 2026-11-24 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006_sla'
down_revision: Union[str, Sequence[str], None] = '0005_web'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('sla_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('breached', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_id', 'kind', 'due_at')
    )
    with op.batch_alter_table('sla_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sla_events_fired_at'), ['fired_at'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('sla_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sla_events_fired_at'))

    op.drop_table('sla_events')
