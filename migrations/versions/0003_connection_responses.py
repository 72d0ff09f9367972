"""connections: the upstream offers the Responses API itself

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 18:50:00.000000

A non-null boolean with a server default, so SQLite adds it in place (ALTER TABLE ADD COLUMN) and every
existing connection keeps translating Responses calls to chat completions.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('responses_api', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_column('responses_api')
