"""What an operator can do from the console, through the same functions as the CLI.

Each action returns an ``ActionResult`` and is audited (``console.action``) with the user who did
it. None can post a record twice: runs and replays go through the flow's lease and the record
ledger exactly like ``ml-connector run`` / ``replay``. ``abandon_intent`` and ``resend_file`` are
small functions here so the lead can re-point them at the operator commands when those land.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from ..config import FlowsFile
from ..errors import MLConnectorError, NotFoundError, UsageError
from ..flows import RunContext, RunResult, run_flow
from ..flows.replay import replay_file
from ..home import Home
from ..store import Store
from ..store.flow_settings import FlowSettings
from ..store.ledger import FileRow

ACTIONS = {
    "run": "Run the flow now",
    "replay": "Replay this file (failed records only; posted records are not posted again)",
    "resend": "Re-send this outbound file byte-identical",
    "abandon": "Abandon this pending intent (its records go out again in a new file)",
    "enable": "Enable the flow's schedule",
    "disable": "Disable the flow's schedule",
    "test": "Test this connection",
}
TARGET_KIND = {"run": "flow", "enable": "flow", "disable": "flow", "replay": "file", "resend": "file",
               "abandon": "file", "test": "connection"}  # fmt: skip


@dataclass
class ActionResult:
    ok: bool
    message: str
    run_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _ctx(home: Home, store: Store) -> RunContext:
    return RunContext(store=store, keyring=home.keyring(), staging=home.staging, trigger="console")


def _ledger_file(store: Store, file_id: int, direction: str) -> FileRow:
    """The ledger row of an ``inbound``/``outbound`` file, or NotFoundError."""
    f = store.ledger.file(file_id)
    if f is None or f.direction != direction:
        raise NotFoundError(f"no {direction} file {file_id}")
    return f


def _from_run(result: RunResult) -> ActionResult:
    counts = {k: v for k, v in result.counts.items() if k != "exit_code"}
    said = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(counts.items())) or "nothing to do"
    message = f"{result.flow}: {result.state} ({said})" + (f": {result.error}" if result.error else "")
    return ActionResult(result.state in ("succeeded", "partial"), message, result.run_id, {"counts": counts})


async def run_now(home: Home, store: Store, flows: FlowsFile, flow: str) -> ActionResult:
    """One run of ``flow`` now (a flow already running elsewhere reports ``locked``)."""
    cfg = flows.flows.get(flow)
    if cfg is None:
        raise NotFoundError(f"no flow named {flow!r} in flows.yaml")
    return _from_run(await run_flow(_ctx(home, store), flow, cfg))


async def replay(home: Home, store: Store, flows: FlowsFile, file_id: int) -> ActionResult:
    """``ml-connector replay FILE_ID`` for an inbound file."""
    _ledger_file(store, file_id, "inbound")  # replay is for inbound files only
    return _from_run(await replay_file(_ctx(home, store), flows, file_id))


async def resend_file(home: Home, store: Store, flows: FlowsFile, file_id: int) -> ActionResult:
    """Re-send a delivered outbound file byte-identical (``replay`` on an outbound file)."""
    f = _ledger_file(store, file_id, "outbound")
    if f.state != "delivered":
        raise UsageError(f"file {file_id} is {f.state}: only a delivered file can be re-sent")
    return _from_run(await replay_file(_ctx(home, store), flows, file_id))


def abandon_intent(store: Store, file_id: int, *, user: str) -> ActionResult:
    """Give up an outbound intent that cannot complete; the watermark never moved past it."""
    f = _ledger_file(store, file_id, "outbound")
    if f.state != "intent":
        raise UsageError(f"file {file_id} is {f.state}: only a pending intent can be abandoned")
    owner = f"console:{socket.gethostname()}:{os.getpid()}"
    # Under the flow's lease, so a run resuming this very intent cannot race the change.
    with store.locks.hold(f.flow, owner) as got:
        if not got:
            return ActionResult(False, f"flow {f.flow} is running; try again when it finishes")
        with store.session() as s, s.begin():
            store.ledger.update_file(
                file_id, session=s, state="abandoned",
                error=f"abandoned by {user} in the console; its records go out again in the next file",
            )  # fmt: skip
            store.audit.record("file.abandoned", flow=f.flow, subject=f.remote_path, outcome="warning",
                               details={"file_id": file_id, "by": user}, session=s)  # fmt: skip
    return ActionResult(True, f"{f.name}: abandoned; the next run of {f.flow} sends its records again")


def set_enabled(store: Store, flow: str, enabled: bool, *, user: str) -> ActionResult:
    changed = FlowSettings(store).set_enabled(flow, enabled, by=user)
    word = "enabled" if enabled else "disabled"
    return ActionResult(True, f"{flow}: {word}" + ("" if changed else " (it already was)"))


async def test_connection(home: Home, store: Store, name: str) -> ActionResult:
    """The ``connections test`` probe: Kinetic ping, or SFTP connect + host key pin."""
    from ..connections import SftpSettings
    from ..kinetic import KineticClient, KineticOptions
    from ..sftp import SftpClient

    settings = store.connections.settings(name, home.keyring())

    def audit(kind: str, **kw: Any) -> None:
        store.audit.record(kind, **kw)

    try:
        if isinstance(settings, SftpSettings):
            async with SftpClient(settings, name=name, audit=audit) as c:
                result: dict[str, Any] = {"host_key": c.host_fingerprint}
            message = f"{name}: connected; host key {result['host_key']} matches the pin"
        else:
            async with KineticClient(settings, options=KineticOptions(attempts=1), audit=audit) as k:
                result = await asyncio.wait_for(k.ping(), timeout=60)
            message = f"{name}: authenticated to company {result.get('company')} in {result.get('round_trip_ms')} ms"
    except (MLConnectorError, OSError, TimeoutError) as exc:
        store.audit.record("connection.tested", subject=name, outcome="error", details={"error": str(exc)})
        return ActionResult(False, f"{name}: {exc}")
    store.audit.record("connection.tested", subject=name, details=result)
    return ActionResult(True, message, details=result)
