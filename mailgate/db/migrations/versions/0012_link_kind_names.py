"""follow-up links named as tickets.link_kinds names them: "followed by"

Revision ID: 0012_link_kind_names
Revises: 0011_created_at_index
Create Date: 2026-12-06 04:40:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0012_link_kind_names'
down_revision: Union[str, Sequence[str], None] = '0011_created_at_index'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # Link kinds became configurable (issue 22), with "follows" / "followed by" among the
    # defaults; the follow-up tickets of the portal wrote "followed_by" before.
    op.execute("UPDATE ticket_links SET kind = 'followed by' WHERE kind = 'followed_by'")


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("UPDATE ticket_links SET kind = 'followed_by' WHERE kind = 'followed by'")
