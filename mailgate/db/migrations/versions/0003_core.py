"""core: reply text apart from quotes; notice detail

Revision ID: 0003_core
Revises: 0001
Create Date: 2026-11-23

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0003_core"
down_revision: Union[str, Sequence[str], None] = "0002_imap"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_reply", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("detail", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_column("detail")
    with op.batch_alter_table("ticket_messages", schema=None) as batch_op:
        batch_op.drop_column("body_reply")
