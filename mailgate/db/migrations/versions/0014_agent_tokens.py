"""agent tokens: an API token may belong to an agent, who then acts through it

Revision ID: 0014_agent_tokens
Revises: 0013_activities
Create Date: 2026-12-06 06:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0014_agent_tokens'
down_revision: Union[str, Sequence[str], None] = '0013_activities'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_foreign_key('fk_api_tokens_agent_id', 'agents', ['agent_id'], ['id'])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint('fk_api_tokens_agent_id', type_='foreignkey')
        batch_op.drop_column('agent_id')
