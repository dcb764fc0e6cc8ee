"""Replay: re-process an inbound file after a mapping fix, or re-send an outbound file."""

from __future__ import annotations

from ..config import FlowsFile, InboundFlow, OutboundFlow
from ..errors import NotFoundError, UsageError
from .context import RunContext, RunResult
from .inbound import InboundRun
from .outbound import OutboundRun


async def replay_file(ctx: RunContext, flows: FlowsFile, file_id: int) -> RunResult:
    f = ctx.store.ledger.file(file_id)
    if f is None:
        raise NotFoundError(f"no file {file_id} in the ledger (see 'ml-connector files')")
    flow = flows.flows.get(f.flow)
    if flow is None:
        raise UsageError(f"file {file_id} belongs to flow {f.flow!r}, which is no longer in flows.yaml")
    ctx.store.audit.record("replay.requested", flow=f.flow, subject=f.remote_path, details={"file_id": file_id})
    if isinstance(flow, OutboundFlow):
        return await OutboundRun(ctx, f.flow, flow).replay(file_id)
    assert isinstance(flow, InboundFlow)
    return await InboundRun(ctx, f.flow, flow).replay(file_id)


async def replay_run(ctx: RunContext, flows: FlowsFile, run_id: str) -> list[RunResult]:
    files = ctx.store.ledger.files(run_id=run_id)
    if not files:
        raise NotFoundError(f"run {run_id} has no files in the ledger")
    return [await replay_file(ctx, flows, f.id) for f in files if f.state not in ("intent", "abandoned")]
