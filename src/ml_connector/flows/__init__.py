"""Flow runs: the run semantics of DESIGN.md section 2 as functions of (flow, context)."""

from __future__ import annotations

from pathlib import Path

from ..config import InboundFlow, OutboundFlow
from .context import AuditBuffer, Progress, RunContext, RunResult, failpoint
from .inbound import run_inbound
from .outbound import run_outbound


async def run_flow(ctx: RunContext, name: str, flow: OutboundFlow | InboundFlow, *, dry_run: bool = False,
                   sample: Path | None = None) -> RunResult:  # fmt: skip
    """One run of one flow, now (``sample``: an inbound dry run on that local file)."""
    if isinstance(flow, OutboundFlow):
        return await run_outbound(ctx, name, flow, dry_run=dry_run)
    return await run_inbound(ctx, name, flow, dry_run=dry_run, sample=sample)


__all__ = ["AuditBuffer", "Progress", "RunContext", "RunResult", "failpoint", "run_flow", "run_inbound", "run_outbound"]
