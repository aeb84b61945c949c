"""A customer's tickets newest first: indexes by (address, ticket) and (account, ticket)

Revision ID: 0021_customer_tickets_newest
Revises: 0020_participants_email_index
Create Date: 2026-12-06 18:00:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0021_customer_tickets_newest'
down_revision: Union[str, Sequence[str], None] = '0020_participants_email_index'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# (old index, new index, table, new columns): each new one finds what the old one did.
REPLACED = [
    ('ix_tickets_requester', 'ix_tickets_requester_id', 'tickets', ['requester', 'id']),
    ('ix_tickets_customer_id', 'ix_tickets_customer_id_id', 'tickets', ['customer_id', 'id']),
    (
        'ix_ticket_participants_email',
        'ix_ticket_participants_email_ticket_id',
        'ticket_participants',
        ['email', 'ticket_id'],
    ),
]


def upgrade() -> None:
    """Upgrade schema."""
    # A customer's search walks the tickets they asked, take part in or administer
    # newest first (db/ticket_scope.TicketScope.newest). By the address or the account
    # alone each such row was read and sorted: 4 ms on PostgreSQL and 3 ms on SQLite for
    # an address in 2,500 tickets (benchmarks/scale.py), more for a large account.
    for old, new, table, columns in REPLACED:
        op.create_index(new, table, columns)
        op.drop_index(old, table_name=table)


def downgrade() -> None:
    """Downgrade schema."""
    for old, new, table, columns in REPLACED:
        op.create_index(old, table, columns[:1])
        op.drop_index(new, table_name=table)
