"""suppliers: third parties attached to tickets, their mail kept apart from the
customer's

Revision ID: 0018_suppliers
Revises: 0017_helpers_departments
Create Date: 2026-12-06 07:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0018_suppliers'
down_revision: Union[str, Sequence[str], None] = '0017_helpers_departments'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    """Upgrade schema."""
    # No batch on `tickets` or `ticket_messages`: on SQLite a rebuild would drop the
    # search triggers of 0016; ADD COLUMN with a constant default rebuilds nothing. A
    # supplier message is a ticket_messages row with a new direction value.
    op.add_column('tickets', sa.Column('suppliers_count', sa.Integer(), server_default='0', nullable=False))
    op.create_table('suppliers',
    sa.Column('id', _ID, nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('addresses', sa.JSON(), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('ticket_suppliers',
    sa.Column('ticket_id', _ID, nullable=False),
    sa.Column('supplier_id', _ID, nullable=False),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('ticket_id', 'supplier_id')
    )
    with op.batch_alter_table('ticket_suppliers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_suppliers_supplier_id'), ['supplier_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('ticket_suppliers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_suppliers_supplier_id'))
    op.drop_table('ticket_suppliers')
    op.drop_table('suppliers')
    # Not a batch (see upgrade): ALTER TABLE ... DROP COLUMN keeps the search triggers.
    op.drop_column('tickets', 'suppliers_count')
