"""Persistence: SQLAlchemy models, Alembic migrations, and the ``Store`` facade.

The names below load on first use (PEP 562), so ``store.health`` and ``store.rows`` import
without SQLAlchemy: ``ml-connector status`` reads a SQLite home with the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(".store", __name__), name)
    globals()[name] = value
    return value
