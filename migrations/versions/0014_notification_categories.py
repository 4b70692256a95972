"""notification categories with the company's defaults and locks, members' choices per
category, a notification's category and urgency, the company's and the member's tool order

Revision ID: 0014
Revises: 0013
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notification_categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("label_ja", sa.String(length=60), nullable=False),
        sa.Column("label_en", sa.String(length=60), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("chat_on", sa.Boolean(), nullable=False),
        sa.Column("email_on", sa.Boolean(), nullable=False),
        sa.Column("chat_locked", sa.Boolean(), nullable=False),
        sa.Column("email_locked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_notification_categories_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_categories")),
        sa.UniqueConstraint("id", "organization_id", name="uq_notification_categories_id_org"),
        sa.UniqueConstraint("organization_id", "key", name="uq_notification_categories_key"),
    )
    with op.batch_alter_table("notification_categories", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_categories_organization_id"),
            ["organization_id"],
            unique=False,
        )

    op.create_table(
        "member_preferences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("chat", sa.Boolean(), nullable=True),
        sa.Column("email", sa.Boolean(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id", "organization_id"],
            ["notification_categories.id", "notification_categories.organization_id"],
            name=op.f("fk_member_preferences_category_id_organization_id_notification_categories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id", "organization_id"],
            ["users.id", "users.organization_id"],
            name=op.f("fk_member_preferences_user_id_organization_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_preferences")),
        sa.UniqueConstraint("user_id", "category_id", name="uq_member_preferences_user_category"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("urgent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_category_id_notification_categories"),
            "notification_categories",
            ["category_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_order", sa.JSON(), nullable=True))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preferred_provider", sa.String(length=16), nullable=True))

    _give_existing_organizations_the_defaults()


#: The default set every organization starts with (``portal/preferences/categories.py``
#: DEFAULTS at the time of this migration), given here to the organizations made before it.
DEFAULTS = (
    ("general", "一般", "General", "ほかのどのカテゴリにも当てはまらないお知らせ"),
    ("one_on_one", "1on1", "1-on-1s", "1on1の予定・リマインダー・メモの共有"),
    ("feedback", "フィードバック", "Feedback", "受け取ったフィードバックや感謝のメッセージ"),
    ("goals", "目標", "Goals", "目標の更新・承認依頼・期日"),
    ("survey", "サーベイ", "Surveys", "サーベイへの回答のお願いとリマインダー"),
)


def _give_existing_organizations_the_defaults():
    bind = op.get_bind()
    organizations = sa.table("organizations", sa.column("id", sa.Integer))
    categories = sa.table(
        "notification_categories",
        sa.column("organization_id", sa.Integer),
        sa.column("key", sa.String),
        sa.column("label_ja", sa.String),
        sa.column("label_en", sa.String),
        sa.column("description", sa.String),
        sa.column("position", sa.Integer),
        sa.column("chat_on", sa.Boolean),
        sa.column("email_on", sa.Boolean),
        sa.column("chat_locked", sa.Boolean),
        sa.column("email_locked", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    rows = [
        {
            "organization_id": organization_id,
            "key": key,
            "label_ja": label_ja,
            "label_en": label_en,
            "description": description,
            "position": position,
            "chat_on": True,
            "email_on": False,
            "chat_locked": False,
            "email_locked": False,
            "created_at": now,
        }
        for (organization_id,) in bind.execute(sa.select(organizations.c.id))
        for position, (key, label_ja, label_en, description) in enumerate(DEFAULTS)
    ]
    if rows:
        op.bulk_insert(categories, rows)


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("preferred_provider")

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("provider_order")

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_notifications_category_id_notification_categories"), type_="foreignkey"
        )
        batch_op.drop_column("urgent")
        batch_op.drop_column("category_id")

    op.drop_table("member_preferences")
    with op.batch_alter_table("notification_categories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_categories_organization_id"))

    op.drop_table("notification_categories")
