"""flows: watermark tie-breaker, record payload-free ledger helpers, X12 interchange history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("watermarks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tiebreak", sa.Text(), nullable=True))
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index("ix_records_file_idx", ["file_id", "idx"], unique=True)
    op.create_table(
        "x12_interchanges",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("sender", sa.String(length=40), nullable=False),
        sa.Column("receiver", sa.String(length=40), nullable=False),
        sa.Column("control_number", sa.String(length=9), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_x12_interchanges_file_id_files"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_x12_interchanges")),
        sa.UniqueConstraint("direction", "sender", "receiver", "control_number", name="uq_x12_interchanges_identity"),
    )


def downgrade() -> None:
    op.drop_table("x12_interchanges")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_file_idx")
    with op.batch_alter_table("watermarks", schema=None) as batch_op:
        batch_op.drop_column("tiebreak")
