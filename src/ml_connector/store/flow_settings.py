"""Operator overrides of flows kept in the database: the console's enable/disable switch.

``flows.yaml``'s ``enabled`` is the file's word; a row here lets an operator pause a flow from
the console without editing the file. The scheduler consults ``is_disabled`` before it runs a slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from . import models as m

if TYPE_CHECKING:
    from .store import Store


class FlowSettings:
    """Read and write the ``flow_settings`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def all(self) -> dict[str, bool]:
        """Flow name -> enabled, for every flow an operator switched."""
        with self._store.session() as s:
            return {r.flow: r.enabled for r in s.scalars(select(m.FlowSetting))}

    def set_enabled(self, flow: str, enabled: bool, *, by: str) -> bool:
        """Switch a flow on or off; returns whether anything changed (audited by the caller)."""
        now = self._store.clock()
        with self._store.session() as s, s.begin():
            row = s.get(m.FlowSetting, flow)
            if row is None:
                s.add(m.FlowSetting(flow=flow, enabled=enabled, updated_at=now, updated_by=by))
                return True
            if row.enabled == enabled:
                return False
            row.enabled, row.updated_at, row.updated_by = enabled, now, by
            return True


def is_disabled(store: Store, flow: str) -> bool:
    """True when an operator disabled ``flow`` in the console."""
    with store.session() as s:
        row = s.get(m.FlowSetting, flow)
        return row is not None and not row.enabled
