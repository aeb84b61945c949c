"""notices.channel: the chat channel or webhook a notice goes to (issue 24)

Revision ID: 0019_notice_channels
Revises: 0018_suppliers
Create Date: 2026-12-07 09:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0019_notice_channels'
down_revision: Union[str, Sequence[str], None] = '0018_suppliers'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # ADD COLUMN with a constant default, not a batch: nothing is rebuilt on SQLite, and
    # the notices already there are mail ("").
    op.add_column(
        'notices', sa.Column('channel', sa.String(length=64), server_default='', nullable=False)
    )


def downgrade() -> None:
    """Downgrade schema."""
    # Not a batch either: ALTER TABLE ... DROP COLUMN (SQLite 3.35+) rebuilds nothing.
    op.drop_column('notices', 'channel')
