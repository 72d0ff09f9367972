"""connections: allow paid and storing request options upstream

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:50:00

One column, off for every existing connection: `service_tier`, `store`, Anthropic server tools and
`anthropic-beta` headers are stripped or refused unless an admin allows them per connection.
A NOT NULL column with a server default, so SQLite adds it in place (ALTER TABLE ADD COLUMN).

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('connections') as batch_op:
        batch_op.add_column(sa.Column('allow_passthrough', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('connections') as batch_op:
        batch_op.drop_column('allow_passthrough')
