"""working hours (the company's, and the member's own zone and narrower hours) and digests
(a category's default batching, and the member's own)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("member_preferences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("digest_time", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("digest_weekday", sa.Integer(), nullable=True))

    with op.batch_alter_table("notification_categories", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("digest", sa.String(length=8), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("digest_time", sa.String(length=5), server_default="09:00", nullable=False)
        )
        batch_op.add_column(
            sa.Column("digest_weekday", sa.Integer(), server_default="1", nullable=False)
        )

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("quiet_hours_on", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "time_zone", sa.String(length=64), server_default="Asia/Tokyo", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("work_days", sa.String(length=7), server_default="12345", nullable=False)
        )
        batch_op.add_column(
            sa.Column("work_start", sa.String(length=5), server_default="09:00", nullable=False)
        )
        batch_op.add_column(
            sa.Column("work_end", sa.String(length=5), server_default="19:00", nullable=False)
        )
        batch_op.add_column(
            sa.Column("holidays_off", sa.Boolean(), server_default=sa.true(), nullable=False)
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("work_start", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("work_end", sa.String(length=5), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("work_end")
        batch_op.drop_column("work_start")
        batch_op.drop_column("time_zone")

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("holidays_off")
        batch_op.drop_column("work_end")
        batch_op.drop_column("work_start")
        batch_op.drop_column("work_days")
        batch_op.drop_column("time_zone")
        batch_op.drop_column("quiet_hours_on")

    with op.batch_alter_table("notification_categories", schema=None) as batch_op:
        batch_op.drop_column("digest_weekday")
        batch_op.drop_column("digest_time")
        batch_op.drop_column("digest")

    with op.batch_alter_table("member_preferences", schema=None) as batch_op:
        batch_op.drop_column("digest_weekday")
        batch_op.drop_column("digest_time")
        batch_op.drop_column("digest")
