"""todos: tasks on a ticket or standalone (title, assignee, due date, done)

Revision ID: 0015_todos
Revises: 0014_agent_tokens
Create Date: 2026-12-07 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0015_todos'
down_revision: Union[str, Sequence[str], None] = '0014_agent_tokens'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('todos',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('assignee_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.String(length=320), nullable=True),
    sa.Column('created_by', sa.String(length=320), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['agents.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('todos', schema=None) as batch_op:
        # Open to-dos (done_at NULL) first, by due date: the SLA check's "open and due
        # before now" and `todos list --overdue` read a range of it, not the whole table.
        batch_op.create_index('ix_todos_done_at_due_at', ['done_at', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_todos_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_todos_ticket_id'), ['ticket_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('todos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_todos_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_todos_assignee_id'))
        batch_op.drop_index('ix_todos_done_at_due_at')
    op.drop_table('todos')
