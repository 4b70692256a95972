"""people: a member's channel choice and the organization's policy for it

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        # None follows the organization's routing (chat when linked, else e-mail).
        batch_op.add_column(sa.Column("channel_preference", sa.String(length=8), nullable=True))
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "allow_channel_choice", sa.Boolean(), nullable=False, server_default=sa.true()
            )
        )


def downgrade():
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("allow_channel_choice")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("channel_preference")
