"""console: users, flow settings (enable/disable), indexes for run history and search

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("name", name=op.f("uq_console_users_name")),
    )
    op.create_table(
        "flow_settings",
        sa.Column("flow", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("flow", name=op.f("pk_flow_settings")),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_index("ix_runs_flow_started_at", "runs", ["flow", "started_at"])
    op.create_index("ix_records_state", "records", ["state"])
    op.create_index("ix_records_natural_key", "records", ["natural_key"])
    op.create_index("ix_files_run_id", "files", ["run_id"])
    op.create_index("ix_x12_interchanges_control_number", "x12_interchanges", ["control_number"])
    op.create_index("ix_x12_interchanges_file_id", "x12_interchanges", ["file_id"])


def downgrade() -> None:
    for name, table in (
        ("ix_x12_interchanges_file_id", "x12_interchanges"),
        ("ix_x12_interchanges_control_number", "x12_interchanges"),
        ("ix_files_run_id", "files"),
        ("ix_records_natural_key", "records"),
        ("ix_records_state", "records"),
        ("ix_runs_flow_started_at", "runs"),
        ("ix_runs_started_at", "runs"),
    ):
        op.drop_index(name, table_name=table)
    op.drop_table("flow_settings")
    op.drop_table("console_users")
