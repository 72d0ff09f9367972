"""audit chain: each audit event carries its position, the previous event's hash and its own

Revision ID: 0005
Revises: 0004

Existing events are chained in the order of their ids; the head row records the newest one.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    from app.audit.chain import GENESIS, HASHED, HEAD_ID, event_hash

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_audit_events_seq'), ['seq'], unique=True)
    head = op.create_table('audit_chain_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    connection = op.get_bind()
    events = sa.table('audit_events', sa.column('id'), sa.column('seq'), sa.column('prev_hash'),
                      sa.column('hash'), sa.column('created_at', sa.DateTime()),
                      *(sa.column(name) for name in HASHED if name != 'created_at'))
    seq, prev = 0, GENESIS
    rows = connection.execute(sa.select(events).order_by(events.c.id)).mappings().all()
    for row in rows:
        seq += 1
        value = event_hash(dict(row), seq, prev)
        connection.execute(events.update().where(events.c.id == row['id'])
                           .values(seq=seq, prev_hash=prev, hash=value))
        prev = value
    connection.execute(head.insert().values(id=HEAD_ID, seq=seq, hash=prev))


def downgrade():
    op.drop_table('audit_chain_head')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_seq'))
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
