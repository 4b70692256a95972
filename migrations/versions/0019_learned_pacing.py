"""learned send budgets: the controller's state in the pacing bucket

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 19:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('pacing_buckets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('learned', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('pacing_buckets', schema=None) as batch_op:
        batch_op.drop_column('learned')
