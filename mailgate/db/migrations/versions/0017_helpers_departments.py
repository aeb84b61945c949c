"""helpers and departments: agents helping on a ticket besides its owner, teams involved
besides its own

Revision ID: 0017_helpers_departments
Revises: 0016_search
Create Date: 2026-12-06 06:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0017_helpers_departments'
down_revision: Union[str, Sequence[str], None] = '0016_search'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    """Upgrade schema."""
    # ADD COLUMN with a constant default: no table rebuild, on SQLite either.
    op.add_column('tickets', sa.Column('helpers_count', sa.Integer(), server_default='0', nullable=False))
    op.create_table('ticket_helpers',
    sa.Column('ticket_id', _ID, nullable=False),
    sa.Column('agent_id', _ID, nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('ticket_id', 'agent_id')
    )
    with op.batch_alter_table('ticket_helpers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_helpers_agent_id'), ['agent_id'], unique=False)

    op.create_table('ticket_departments',
    sa.Column('ticket_id', _ID, nullable=False),
    sa.Column('team_id', _ID, nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('ticket_id', 'team_id')
    )
    with op.batch_alter_table('ticket_departments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_departments_team_id'), ['team_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('ticket_departments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_departments_team_id'))
    op.drop_table('ticket_departments')
    with op.batch_alter_table('ticket_helpers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_helpers_agent_id'))
    op.drop_table('ticket_helpers')
    # Not a batch: on SQLite that rebuilds the table and loses its search triggers
    # (0016); ALTER TABLE ... DROP COLUMN (SQLite 3.35+) keeps them.
    op.drop_column('tickets', 'helpers_count')
