"""Cron slots of a flow, on local wall-clock time placed on the UTC time line.

A leaf (croniter and zoneinfo only): ``status`` and the console show the next run without
loading the serve loop; ``scheduler.py`` runs the slots.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from croniter import croniter

if TYPE_CHECKING:
    from .config import InboundFlow, OutboundFlow

    Flow = OutboundFlow | InboundFlow


def _local_fires(expr: str, tz: ZoneInfo, start_utc: datetime, forward: bool) -> Any:
    """croniter over naive local wall-clock times (DST handled when placing them, below)."""
    local = start_utc.astimezone(tz).replace(tzinfo=None)
    it = croniter(expr, local)
    return it.get_next if forward else it.get_prev


def _place(naive: datetime, tz: ZoneInfo) -> datetime:
    """A local wall-clock time on the UTC time line (fold=0: the first of a repeated hour; a time
    in a spring-forward gap lands just after the gap)."""
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)


def next_fire(flow: Flow, after: datetime) -> datetime | None:
    """The first slot strictly after ``after`` (UTC), or None for unscheduled flows."""
    if not flow.schedule:
        return None
    tz = ZoneInfo(flow.timezone)
    step = _local_fires(flow.schedule, tz, after, forward=True)
    for _ in range(1000):
        slot = _place(step(datetime), tz)
        if slot > after:
            return slot
    return None  # pragma: no cover - a cron expression always advances


def previous_fire(flow: Flow, at: datetime) -> datetime | None:
    """The latest slot at or before ``at`` (UTC)."""
    if not flow.schedule:
        return None
    tz = ZoneInfo(flow.timezone)
    step = _local_fires(flow.schedule, tz, at + timedelta(seconds=1), forward=False)
    for _ in range(1000):
        slot = _place(step(datetime), tz)
        if slot <= at:
            return slot
    return None  # pragma: no cover
