"""worker: retry schedule and policy override on inbound messages; notices without a ticket

Revision ID: 0004_worker
Revises: 0003_core
Create Date: 2026-11-23

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "0004_worker"
down_revision: Union[str, Sequence[str], None] = "0003_core"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("accepted_by", sa.String(length=320), nullable=False, server_default="")
        )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.alter_column("ticket_id", existing_type=BigId, nullable=True)
        batch_op.add_column(sa.Column("inbound_id", BigId, nullable=True))
        batch_op.create_foreign_key(
            "fk_notices_inbound_id", "inbound_messages", ["inbound_id"], ["id"]
        )
        batch_op.create_index("ix_notices_inbound_id", ["inbound_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_inbound_id")
        batch_op.drop_constraint("fk_notices_inbound_id", type_="foreignkey")
        batch_op.drop_column("inbound_id")
        batch_op.alter_column("ticket_id", existing_type=BigId, nullable=False)
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_column("accepted_by")
        batch_op.drop_column("next_attempt_at")
