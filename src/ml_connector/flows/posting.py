"""Posting a batch of an inbound file's records to Kinetic (DESIGN.md section 2, inbound 5).

The entity's recipe (from the registry) does a batch's lookups once and returns the poster for
one record; records with the same natural key post strictly in file order, the rest concurrently
within the flow's limit. Each record ends ``posted`` (with its Kinetic keys), ``failed`` (a record
error: the file goes on) or ``unknown`` (a write whose answer was lost: the next run settles it by
lookup before any retry). Kinetic becoming unreachable, a refused scope or a refused query plan
stop the batch cleanly: what finished is settled, the rest stays ``sending`` for the next run.
Partner 997/TA1 acknowledgments are "posted" to our own ledger instead (``apply_ack``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..errors import (
    ConfigError,
    ConnectError,
    FatalError,
    NotFoundError,
    RecordError,
    TransientError,
    UnknownOutcomeError,
)
from ..formats.x12.remit820 import PaymentAdvice
from ..kinetic.entities import entity as registry_entity
from ..kinetic.recipes import Payload as RecipePayload
from .context import failpoint
from .parsed import AckLine
from .ports import KineticPort

if TYPE_CHECKING:
    from ..store.ledger import FileRow
    from .inbound import InboundRun
    from .parsed import Parsed, Payload

RecordPoster = Callable[["Parsed"], Awaitable[dict[str, Any]]]
# A malformed reply (a field Kinetic left out) fails that record, never the batch.
_REPLY_ERRORS = (KeyError, IndexError, TypeError, ValueError)


async def post_batch(run: InboundRun, k: KineticPort, f: FileRow, batch: list[Parsed]) -> None:
    """Post one batch of a file's records and settle each in the record ledger."""
    run.ctx.check_stop()  # between batches: every record row is pending, posted or failed here
    run.lease.renew()
    run.ledger.mark_sending(f.id, [r.idx for r in batch])
    failpoint("inbound.after-sending")
    poster = await prepare(run, k, batch)
    sem = asyncio.Semaphore(run.flow.concurrency)
    outcomes: dict[int, tuple[int, str, dict[str, Any], str | None]] = {}
    stop: list[BaseException] = []

    async def one(rec: Parsed) -> None:
        if stop:
            return
        try:
            keys = await poster(rec)
            outcomes[rec.idx] = (rec.idx, "posted", keys, None)
        except UnknownOutcomeError as exc:
            outcomes[rec.idx] = (rec.idx, "unknown", {}, str(exc))
        except (ConfigError, ConnectError, TransientError) as exc:
            stop.append(exc)  # Kinetic unreachable, scope refused, query refused: settle what finished
        except (RecordError, FatalError, NotFoundError) as exc:
            outcomes[rec.idx] = (rec.idx, "failed", {}, f"{rec.position}: {exc}")
        except _REPLY_ERRORS as exc:
            outcomes[rec.idx] = (rec.idx, "failed", {}, f"{rec.position}: unexpected reply from Kinetic ({exc!r})")

    async def chain(recs: list[Parsed]) -> None:
        async with sem:
            for rec in recs:  # the same natural key twice in a batch: strictly in file order
                await one(rec)

    groups: dict[str, list[Parsed]] = {}
    for rec in batch:
        groups.setdefault(rec.key or f"#{rec.idx}", []).append(rec)
    await asyncio.gather(*(chain(g) for g in groups.values()))
    failpoint("inbound.after-post")
    settled = [outcomes[r.idx] for r in batch if r.idx in outcomes]
    position = {r.idx: r.position for r in batch}
    with run.audit.transaction() as s:
        run.ledger.settle_records(f.id, settled, session=s)
        for idx, state, keys, error in settled:
            run.audit(
                f"record.{state}",
                subject=f"{f.name}: {position[idx]}",
                outcome={"posted": "ok", "unknown": "warning"}.get(state, "error"),
                details={"file_id": f.id, "idx": idx, "keys": keys, **({"error": error} if error else {})},
            )
    for _, state, keys, _ in settled:
        run.result.bump(f"records_{state}")
        if state == "posted" and "created" in keys:  # the recipes say whether they created or updated
            run.result.bump("records_created" if keys["created"] else "records_updated")
    run.ctx.progress.advance(records=len(settled))
    if stop:
        raise stop[0]


async def prepare(run: InboundRun, k: KineticPort, batch: list[Parsed]) -> RecordPoster:
    """The batch's lookups (by the entity's recipe), and the function that posts one record."""
    entity = run.flow.entity
    if entity == "acknowledgments":

        async def ack(rec: Parsed) -> dict[str, Any]:
            line = _payload(rec)
            if not isinstance(line, AckLine):
                raise RecordError(f"{rec.position}: not a 997/999/TA1 acknowledgment")
            return apply_ack(run, line)

        return ack
    from . import x12_inbound

    await x12_inbound.resolve_batch_lookups(run, k, batch)  # the X12 mapping's 'find' steps
    recipe = registry_entity(entity).recipe()
    ready: list[RecipePayload] = [
        p
        for p in (r.fields for r in batch)
        if p is not None and not isinstance(p, AckLine) and not (isinstance(p, PaymentAdvice) and p.lookup_errors)
    ]
    post = await recipe.prepare(k, ready, run.flow.constants)

    async def record(rec: Parsed) -> dict[str, Any]:
        payload = _payload(rec)
        if isinstance(payload, PaymentAdvice) and payload.lookup_errors:
            # Nothing is posted for a value Kinetic could not resolve to exactly one record.
            raise RecordError("; ".join(payload.lookup_errors))
        if isinstance(payload, AckLine):
            raise RecordError(f"{rec.position}: an acknowledgment is not a {run.flow.entity} record")
        return await post(payload)

    return record


def _payload(rec: Parsed) -> Payload:
    if rec.fields is None:  # parse errors are settled as failed before posting; never posted
        raise RecordError(rec.error or "the record could not be read")
    return rec.fields


def apply_ack(run: InboundRun, line: AckLine) -> dict[str, Any]:
    """A partner's 997/TA1 line: mark our outbound interchange (and file) accepted or rejected."""
    status, ours, theirs = line.status, line.ours, line.theirs  # the ack travels partner -> us
    verdict = "accepted" if status.accepted else "rejected"
    found = None
    if status.interchange:
        found = run.ledger.interchange("outbound", ours, theirs, status.interchange.zfill(9))
    elif status.group:
        found = run.ledger.outbound_by_group(ours, theirs, status.group)
    if found is None:
        raise RecordError(
            f"no outbound interchange from {ours} to {theirs} matches this {status.kind} "
            f"({'interchange ' + status.interchange if status.interchange else 'group ' + str(status.group)})"
        )
    if status.set_control is None:  # the group or interchange verdict decides the file
        groups = found["groups"]
        if status.group and status.group in groups:
            groups[status.group] = {**groups[status.group], "state": verdict, "codes": list(status.errors)}
        run.ledger.set_interchange_state(found["id"], verdict, groups)
        if found["file_id"] is not None:
            run.ledger.update_file(
                found["file_id"],
                details={"ack": verdict, "ack_kind": status.kind, "ack_codes": list(status.errors)},
            )
            run.audit(
                f"x12.{verdict}",
                subject=f"file {found['file_id']}",
                outcome="ok" if status.accepted else "error",
                details={"kind": status.kind, "codes": list(status.errors)},
            )
    return {"interchange_id": found["id"], "file_id": found["file_id"], "verdict": verdict}
