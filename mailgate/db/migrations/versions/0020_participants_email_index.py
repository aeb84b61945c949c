"""ticket_participants.email indexed: a customer's tickets by the address taking part

Revision ID: 0020_participants_email_index
Revises: 0019_notice_channels
Create Date: 2026-12-06 12:00:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0020_participants_email_index'
down_revision: Union[str, Sequence[str], None] = '0019_notice_channels'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # What a customer may see (web/access.visible_to_customer) includes every ticket
    # their address takes part in; the unique (ticket_id, email) index cannot find an
    # address, so each portal page and customer search scanned every participant
    # (benchmarks/scale.py: it grew with the table). CREATE INDEX alone rebuilds nothing.
    op.create_index('ix_ticket_participants_email', 'ticket_participants', ['email'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_ticket_participants_email', table_name='ticket_participants')
