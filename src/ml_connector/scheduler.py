"""``ml-connector serve``: every enabled flow on its cron schedule, in its time zone.

* Each cron slot runs once across every ``serve`` process sharing the database: a slot is
  *claimed* (an atomic compare-and-set on ``flow_schedule``) before the run, and the flow's
  lease keeps two runs of one flow apart even when slots overlap.
* After downtime, one catch-up run for the latest missed slot, never a burst.
* Schedules are computed on local wall-clock time, then placed on the time line: a slot in a
  spring-forward gap runs right after the gap; a slot in the repeated fall-back hour runs once.
* SIGHUP reloads ``flows.yaml`` (an invalid file is reported and the old one kept); SIGTERM or
  SIGINT stops taking new work, lets the running flows finish their current step, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import FlowsFile, InboundFlow, OutboundFlow, load_flows
from .cron import next_fire, previous_fire
from .errors import MLConnectorError

if TYPE_CHECKING:  # the flow engine loads only when a run starts
    from .flows import RunContext, RunResult
    from .store import Store

log = logging.getLogger(__name__)
Flow = OutboundFlow | InboundFlow
__all__ = ["Scheduler", "next_fire", "previous_fire"]


@dataclass
class Scheduler:
    """The serve loop: a pure function of (flows file, context factory); no global state."""

    flows_path: Path
    store: Store
    make_context: Callable[[str], RunContext]
    owner: str
    tick_s: float = 1.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    on_result: Callable[[RunResult], None] | None = None
    flows: FlowsFile = field(default_factory=FlowsFile)
    running: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    stopping: asyncio.Event | None = None
    reload_requested: bool = False

    def load(self, first: bool = False) -> bool:
        try:
            self.flows = load_flows(self.flows_path)
        except MLConnectorError as exc:
            if first:
                raise
            log.error("flows.yaml not reloaded, keeping the previous flows: %s", exc)
            self._record("serve.reload_failed", outcome="error", details={"error": str(exc)})
            return False
        self._record("serve.reloaded", details={"flows": sorted(self.flows.flows)})
        return True

    def _record(self, kind: str, **kw: Any) -> None:
        self.store.audit.record(kind, subject=self.owner, **kw)

    def due(self, name: str, flow: Flow, now: datetime) -> datetime | None:
        """The slot to run now, if any: the latest slot at or before now that nobody claimed."""
        if not flow.enabled or not flow.schedule or name in self.running:
            return None
        slot = previous_fire(flow, now)
        if slot is None:
            return None
        store = self.store
        from .store.flow_settings import is_disabled

        if is_disabled(store, name):  # switched off in the console: its slots pass unrun
            store.schedules.claim(name, slot, self.owner)
            return None
        last = store.schedules.last_slot(name)
        if last is None:  # a new flow starts at its next slot, not with a run for the last one
            store.schedules.claim(name, slot, self.owner)
            return None
        if slot <= last:
            return None
        return slot if store.schedules.claim(name, slot, self.owner) else None

    async def run_forever(self) -> None:
        self.stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        self.load(first=True)
        self._record("serve.start", details={"flows": sorted(self.flows.flows)})
        try:
            while not self.stopping.is_set():
                if self.reload_requested:
                    self.reload_requested = False
                    self.load()
                now = self.clock()
                for name, flow in self.flows.flows.items():
                    slot = self.due(name, flow, now)
                    if slot is not None:
                        self.running[name] = asyncio.create_task(self._run(name, flow, slot))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=self.tick_s)
        finally:
            if self.running:
                await asyncio.gather(*self.running.values(), return_exceptions=True)
            self._record("serve.stop")

    async def _run(self, name: str, flow: Flow, slot: datetime) -> None:
        ctx = self.make_context(name)
        ctx.trigger = "schedule"
        ctx.stop = self.stopping
        ctx.store.audit.record("schedule.slot", flow=name, subject=slot.isoformat(), details={"owner": self.owner})
        try:
            from .flows import run_flow

            result = await run_flow(ctx, name, flow)
            if self.on_result is not None:
                self.on_result(result)
        except Exception:  # a bug in one flow must not stop the others
            log.exception("flow %s crashed", name)
        finally:
            self.running.pop(name, None)

    def stop(self) -> None:
        if self.stopping is not None:
            self.stopping.set()

    def request_reload(self) -> None:
        self.reload_requested = True
