"""Alembic environment: migrations run on the connection ml-connector hands over."""

from __future__ import annotations

from alembic import context

from ml_connector.store.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the store drives migrations
    raise RuntimeError("ml-connector migrations run through ml_connector.store.db.migrate()")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
