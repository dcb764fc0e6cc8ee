"""Replay: re-process an inbound file after a mapping fix, or re-send an outbound file."""

from __future__ import annotations

import asyncssh

from ..config import FlowsFile, InboundFlow, OutboundFlow
from ..errors import MLConnectorError, NotFoundError, UsageError
from ..store.ledger import FileRow
from .context import AuditBuffer, RunContext, RunResult
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
    if not isinstance(flow, InboundFlow):
        raise UsageError(f"file {file_id}: flow {f.flow!r} is neither inbound nor outbound")
    result = await InboundRun(ctx, f.flow, flow).replay(file_id)
    after = ctx.store.ledger.file(file_id)
    if after is not None and after.state == "done" and f.state == "error":
        await _resolve_sidecar(ctx, flow, f, after, result)
    return result


async def _resolve_sidecar(ctx: RunContext, flow: InboundFlow, before: FileRow, after: FileRow,
                           result: RunResult) -> None:  # fmt: skip
    """A replay fixed the file: its ``NAME.error.json`` must not keep saying it failed.

    The sidecar moves beside the archived file as ``NAME.error.json.resolved`` (kept: it is the
    history of what went wrong), or is renamed in place when the flow has no archive folder.
    """
    old = str(before.details.get("moved_to") or "")
    if not old or flow.error_folder is None or old.rsplit("/", 1)[0] != flow.error_folder.rstrip("/"):
        return
    sidecar = f"{old}.error.json"
    dest_folder = (flow.archive_folder or flow.error_folder).rstrip("/")
    archived = str(after.details.get("moved_to") or old).rsplit("/", 1)[-1]
    target = f"{dest_folder}/{archived}.error.json.resolved"
    audit = AuditBuffer(ctx.store, before.flow, result.run_id)
    try:
        async with ctx.sftp(flow.sftp, audit) as sftp:
            raw = await sftp.connect()
            if not await raw.exists(sidecar):
                return
            if await raw.exists(target):
                await raw.remove(target)  # an older resolved note for the same name: this one is newer
            await raw.rename(sidecar, target)
        audit("file.sidecar_resolved", subject=sidecar, details={"file_id": before.id, "moved_to": target})
        result.files.append({"id": before.id, "name": sidecar.rsplit("/", 1)[-1], "moved_to": target,
                             "how": "error note resolved"})  # fmt: skip
    except (MLConnectorError, OSError, asyncssh.Error) as exc:
        # The replay itself succeeded; a stale note is reported, never turned into a failure.
        audit("file.sidecar_stale", subject=sidecar, outcome="warning", details={"error": str(exc)})
    finally:
        audit.flush()


async def replay_run(ctx: RunContext, flows: FlowsFile, run_id: str) -> list[RunResult]:
    files = ctx.store.ledger.files(run_id=run_id)
    if not files:
        raise NotFoundError(f"run {run_id} has no files in the ledger")
    return [await replay_file(ctx, flows, f.id) for f in files if f.state not in ("intent", "abandoned")]
