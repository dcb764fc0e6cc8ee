"""What every run shares: lock, run row, audit buffer, clients, the outcome, and the cleanup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ConnectError, MLConnectorError
from .context import AuditBuffer, Lease, RunContext, RunResult, StopRequested
from .ports import KineticPort, PartnerFiles

log = logging.getLogger(__name__)
Work = Callable[[KineticPort, PartnerFiles], Awaitable[None]]


class FlowRun:
    """Base of ``OutboundRun`` and ``InboundRun``: ``_lifecycle`` wraps one unit of work."""

    direction = ""

    def __init__(self, ctx: RunContext, name: str, flow: Any) -> None:
        self.ctx, self.name, self.flow = ctx, name, flow
        self.result = RunResult(name, self.direction, None, "running")
        self.run_id = "dry-run"
        self.audit = AuditBuffer(ctx.store, name, None)
        self.lease = Lease(ctx, name)

    def _outcome(self) -> str:
        """The state of a run whose work returned normally."""
        return "succeeded"

    def _named(self, exc: MLConnectorError) -> str:
        """A connection failure says which connection: SFTP messages start with its name, Kinetic's do not."""
        text = str(exc)
        if isinstance(exc, ConnectError) and not text.startswith((f"{self.flow.sftp}:", "connection ")):
            return f"Epicor connection {self.flow.epicor!r}: {text}"
        return text

    async def _lifecycle(self, work: Work) -> RunResult:
        ctx, ledger = self.ctx, self.ctx.store.ledger
        if not self.lease.acquire():
            self.result.state = "locked"
            holder = ctx.store.locks.holder(self.name)
            by = f" ({holder[0]})" if holder else ""
            self.result.error = f"flow {self.name} is running in another process{by}; nothing was done"
            return self.result
        crashed = ledger.abandon_stale_runs(self.name)
        self.run_id = ledger.start_run(self.name, self.direction, ctx.trigger)
        log.info("flow %s: run %s started (%s)", self.name, self.run_id, ctx.trigger)
        self.result.run_id = self.run_id
        self.audit = AuditBuffer(ctx.store, self.name, self.run_id, observe=ctx.observe)
        self.audit("run.start", subject=self.name, details={"trigger": ctx.trigger, "crashed_runs": crashed})
        state, error = "failed", None
        try:
            async with ctx.kinetic(self.flow.epicor, self.audit, self.name, self.run_id) as k:
                sftp = ctx.sftp(self.flow.sftp, self.audit)
                try:
                    await work(k, sftp)
                finally:
                    await sftp.close()
            state = self._outcome()
        except StopRequested as exc:
            state, error = "stopped", str(exc)
            self.audit("run.stopped", subject=self.name, outcome="warning")
        except (asyncio.CancelledError, KeyboardInterrupt):
            # Ctrl-C (asyncio.run cancels the task) or a cancelled scheduler task: the ledgers hold
            # what was confirmed; the run is recorded as interrupted, not as a failure without reason.
            state, error = "interrupted", "interrupted (Ctrl-C or cancelled) during the run; the next run resumes"
            self.audit("run.interrupted", subject=self.name, outcome="warning")
            raise
        except MLConnectorError as exc:
            error = self._named(exc)
            self.result.error_exit_code = exc.exit_code
            self.audit("run.error", subject=self.name, outcome="error", details={"error": error})
        except Exception as exc:  # a bug: the run still ends recorded, unlocked and reported
            log.exception("flow %s: internal error", self.name)
            error = f"internal error: {type(exc).__name__}: {exc}"
            self.audit("run.error", subject=self.name, outcome="error", details={"error": error})
        finally:
            self.result.state, self.result.error = state, error
            counts = dict(self.result.counts)
            if state == "partial":
                self.audit("alert.run_partial", subject=self.name, outcome="warning", details=counts)
            outcome = "ok" if state == "succeeded" else "error"
            self.audit("run.end", subject=self.name, outcome=outcome, details={"state": state, **counts})
            self.audit.flush()
            ledger.finish_run(self.run_id, state, counts, error)
            self.lease.release()
            log.info("flow %s: run %s ended %s %s", self.name, self.run_id, state, counts)
        return self.result
