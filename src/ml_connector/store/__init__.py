"""Persistence: SQLAlchemy models, Alembic migrations, and the ``Store`` facade."""

from .store import (
    AuditLog,
    AuditRecord,
    ConnectionStore,
    ControlNumbers,
    FlowLocks,
    Store,
    StoredConnection,
    Watermarks,
    utcnow,
)

__all__ = [
    "AuditLog",
    "AuditRecord",
    "ConnectionStore",
    "ControlNumbers",
    "FlowLocks",
    "Store",
    "StoredConnection",
    "Watermarks",
    "utcnow",
]
