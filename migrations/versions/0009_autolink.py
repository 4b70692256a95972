"""autolink: e-mail matches linked after each sync, as batches an admin can undo

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        # The seed links same-address accounts automatically: existing organizations too.
        batch_op.add_column(
            sa.Column("auto_link_by_email", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_table(
        "link_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked", sa.Integer(), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.Column("undone", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id", "organization_id"],
            ["integrations.id", "integrations.organization_id"],
            name=op.f("fk_link_batches_integration_id_organization_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sync_id"],
            ["directory_syncs.id"],
            name=op.f("fk_link_batches_sync_id_directory_syncs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_link_batches_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["undone_by_id"],
            ["users.id"],
            name=op.f("fk_link_batches_undone_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_batches")),
    )
    with op.batch_alter_table("link_batches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_link_batches_integration", ["integration_id", "automatic", "id"], unique=False
        )
    with op.batch_alter_table("account_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_account_links_batch_id_link_batches"),
            "link_batches",
            ["batch_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_account_links_batch", ["batch_id"], unique=False)


def downgrade():
    with op.batch_alter_table("account_links", schema=None) as batch_op:
        batch_op.drop_index("ix_account_links_batch")
        batch_op.drop_constraint(
            batch_op.f("fk_account_links_batch_id_link_batches"), type_="foreignkey"
        )
        batch_op.drop_column("batch_id")
    with op.batch_alter_table("link_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_link_batches_integration")
    op.drop_table("link_batches")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("auto_link_by_email")
