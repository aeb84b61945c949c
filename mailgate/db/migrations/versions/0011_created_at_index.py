"""tickets.created_at indexed: the tickets opened in a period, read by range

Revision ID: 0011_created_at_index
Revises: 0010_scale_indexes
Create Date: 2026-12-06 04:30:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0011_created_at_index'
down_revision: Union[str, Sequence[str], None] = '0010_scale_indexes'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # `mailgate stats` reports the tickets opened in its period, per day and per account,
    # team, type and priority (issue 22): without this it would scan every ticket.
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tickets_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_created_at'))
