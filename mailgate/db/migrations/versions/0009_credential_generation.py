"""portal sessions end with the agent's credential: a generation on agents and sessions

Revision ID: 0009_credential_generation
Revises: 0008_rejections
Create Date: 2026-11-25 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0009_credential_generation'
down_revision: Union[str, Sequence[str], None] = '0008_rejections'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # Both start at 0, so the sessions already signed in stay signed in.
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('credential_generation', sa.Integer(), nullable=False, server_default='0')
        )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('credential_generation', sa.Integer(), nullable=False, server_default='0')
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_column('credential_generation')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('credential_generation')
