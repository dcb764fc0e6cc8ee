"""Outbound run (DESIGN.md section 2): Kinetic changes -> file -> partner SFTP, exactly once.

lock -> recover pending intents -> read watermark -> keyset extract -> streaming render to
staging -> intent (name, sha256, size, new watermark, control numbers) -> atomic upload ->
one transaction: file delivered + watermark + audit. A crash anywhere re-runs safely: a pending
intent is completed (the remote final name is checked) or re-sent byte-identical from staging;
the watermark never moves past records that were not delivered.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..config import CsvFormat, FixedWidthFormat, OutboundFlow, X12Format
from ..errors import ConfigError, FatalError, MLConnectorError, NotFoundError, RecordError, UsageError
from ..kinetic import odata
from ..kinetic.entities import ENTITIES
from ..mapping import outbound_mapper, resolve_format, source_fields
from ..sftp.client import join, sha256_file
from ..store.ledger import FileRow
from . import poison
from .base import FlowRun
from .context import AuditBuffer, RunContext, RunResult, StopRequested, failpoint
from .ports import KineticPort, PartnerFiles
from .render import FlatRenderer, HashingFile, Renderer, X12Renderer


def file_name(template: str, *, flow: str, run_id: str, seq: int, ext: str, now: datetime) -> str:
    """``{flow}``, ``{run}``, ``{seq}``, ``{ext}``, ``{now:%Y%m%d}`` filled in; unknown keys refused."""
    values = {"flow": flow, "run": run_id[:8], "seq": seq, "ext": ext, "now": now}
    try:
        return string.Formatter().vformat(template, (), values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"filename {template!r}: {exc} (use {{flow}}, {{run}}, {{seq}}, {{ext}}, {{now:%Y%m%d}})"
        ) from None


def _encode(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass
class _Open:
    """The file being rendered."""

    renderer: Renderer
    local: Path
    name: str
    seq: int
    last: tuple[Any, Any] | None = None
    control: dict[str, Any] = field(default_factory=dict)


class OutboundRun(FlowRun):
    direction = "outbound"

    def __init__(self, ctx: RunContext, name: str, flow: OutboundFlow, *, dry_run: bool = False) -> None:
        super().__init__(ctx, name, flow)
        self.flow: OutboundFlow = flow
        self.dry_run = dry_run
        self.fmt = resolve_format(flow)
        self.staging = ctx.staging / "outbound" / name
        self.cursor = flow.cursor_field
        self.source = ENTITIES[flow.entity]  # service, entity set, child sets: the entity registry
        breakers = [b for b in self.source.tiebreak if b != self.cursor]
        self.tiebreak: str | None = breakers[0] if breakers else None
        self.now = ctx.clock().astimezone(ZoneInfo(flow.timezone))
        self.partner_key = ""
        if isinstance(self.fmt, X12Format):
            p = self.fmt.partner
            self.partner_key = f"{p.sender_qualifier}:{p.sender_id}>{p.receiver_qualifier}:{p.receiver_id}"

    # --- entry ----------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        if self.dry_run:
            return await self._dry_run()

        async def work(k: KineticPort, sftp: PartnerFiles) -> None:
            await self._recover(sftp)
            await self._extract_and_deliver(k, sftp)

        return await self._lifecycle(work)

    async def replay(self, file_id: int) -> RunResult:
        """Re-send a delivered file byte-identical from its kept copy (the partner lost it)."""
        ledger = self.ctx.store.ledger
        f = ledger.file(file_id)
        if f is None or f.flow != self.name or f.direction != "outbound":
            raise NotFoundError(f"no outbound file {file_id} in flow {self.name}")
        if f.state != "delivered":
            raise FatalError(f"file {file_id} is {f.state}; only delivered files are re-sent")
        kept = Path(str(f.details.get("kept") or ""))
        if not kept.is_file() or sha256_file(kept) != f.sha256:
            raise FatalError(f"file {file_id}: the kept copy is gone (pruned?); it cannot be re-sent byte-identical")
        self.ctx.trigger = "replay"

        async def work(k: KineticPort, sftp: PartnerFiles) -> None:
            # The one run lifecycle (lock, stale runs, stop, interruption, audit): replay is a run like any other.
            folder, name = f.remote_path.rsplit("/", 1)
            final = await sftp.upload_atomic(kept, folder, name, on_conflict="overwrite", sha256=f.sha256)
            with self.audit.transaction() as s:
                ledger.update_file(f.id, session=s, details={"replayed": int(f.details.get("replayed", 0)) + 1})
                self.audit("replay.resent", subject=final, details={"file_id": f.id, "sha256": f.sha256,
                                                                    "size": f.size, "replay_of": file_id})  # fmt: skip
            self.result.bump("files")
            self.result.files.append({"id": f.id, "remote_path": final, "size": f.size, "how": "re-sent (replay)"})

        return await self._lifecycle(work)

    # --- recovery -------------------------------------------------------------------------------

    async def _recover(self, sftp: PartnerFiles) -> None:
        """Finish what a crashed run started: every pending intent ends delivered or abandoned."""
        ledger = self.ctx.store.ledger
        abandoned = False
        for f in ledger.files(flow=self.name, direction="outbound", states=["intent"]):
            try:
                done = await self._settle_intent(sftp, f, self.flow.folder, move_watermark=not abandoned)
            except MLConnectorError as exc:
                _explain_pending(exc, f.id, f.remote_path)
                raise
            abandoned = abandoned or not done
        # Staged files no intent refers to are renders a crash interrupted: nothing was sent.
        if self.staging.is_dir():
            for leftover in self.staging.iterdir():
                if leftover.is_file():
                    leftover.unlink(missing_ok=True)

    async def _settle_intent(self, sftp: PartnerFiles, f: FileRow, target: str, *, move_watermark: bool = True,
                             operator: bool = False) -> bool:  # fmt: skip
        """Complete one pending intent: found on the server, or re-sent byte-identical to ``target``.

        ``target`` is the flow's current folder (or the operator's ``--folder``): an intent recorded
        for a folder that was wrong is re-sent where the flow now points, not retried forever.
        Returns False when the staged copy is lost (the intent is abandoned; the watermark stays).
        """
        ledger = self.ctx.store.ledger
        d = f.details
        folder, name = d["folder"], d["name"]
        local = Path(f.local_path or "")
        intact = local.is_file() and sha256_file(local) == f.sha256
        found = None
        for place in dict.fromkeys([folder, target]):
            try:
                if await sftp.final_matches(place, name, f.size):
                    found = place
                    break
            except NotFoundError:
                continue  # the folder itself is missing: the file is not there
        how = "re-sent by the operator" if operator else "re-sent byte-identical"
        if found is not None:
            final, how = join(found, name), "already on the server"
        elif intact:
            final = await sftp.upload_atomic(local, target, name, on_conflict=self.flow.on_conflict, sha256=f.sha256)
            if target != folder:
                how += f" to {target} (intended for {folder})"
        else:
            ledger.update_file(
                f.id,
                state="abandoned",
                error="the staged copy was lost before it reached the server; "
                "its records are sent again (the watermark did not move)",
            )
            self.audit("file.abandoned", subject=join(folder, name), outcome="warning", details={"file_id": f.id})
            await self._drop_temporaries(sftp, [folder, target], name)
            return False
        self._commit(f.id, final, {**d, "folder": final.rsplit("/", 1)[0]}, f.size, f.sha256 or "",
                     move_watermark=move_watermark, how=how)  # fmt: skip
        self.result.bump("recovered")
        self.ctx.progress.note(f"recovered {final} ({how})")
        local.unlink(missing_ok=True)
        await self._drop_temporaries(sftp, [folder, target], name)
        return True

    async def _drop_temporaries(self, sftp: PartnerFiles, folders: list[str], name: str) -> None:
        """A killed upload's ``.NAME.part`` in the intent's folders, once the intent is settled.

        Best effort: the ledger already says what happened; a temporary that cannot be removed is
        audited (``sftp.temp_left``), and partners skip dot-files and ``.part`` names anyway.
        """
        for place in dict.fromkeys(folders):
            try:
                await sftp.remove_temporary(place, name)
            except MLConnectorError as exc:
                self.audit("sftp.temp_left", subject=join(place, name), outcome="warning", details={"error": str(exc)})

    async def resend_intent(self, file_id: int, folder: str | None) -> RunResult:
        """``files resend ID``: complete a pending intent now, to ``folder`` or the flow's current folder."""
        f = self._pending(file_id)

        async def work(k: KineticPort, sftp: PartnerFiles) -> None:
            if not await self._settle_intent(sftp, f, folder or self.flow.folder, operator=True):
                raise FatalError(f"file {file_id}: the staged copy is gone; it was abandoned, the next run re-extracts")

        return await self._lifecycle(work)

    async def abandon_intent(self, file_id: int, *, check_server: bool = True) -> RunResult:
        """``files abandon ID``: drop a pending intent; the watermark stays, so the next run sends its records.

        Refused when the file is on the server already (that would deliver its records twice):
        then running the flow completes the intent instead.
        """
        f = self._pending(file_id)
        folder, name = f.details["folder"], f.details["name"]

        async def work(k: KineticPort, sftp: PartnerFiles) -> None:
            if check_server:
                for place in dict.fromkeys([folder, self.flow.folder]):
                    try:
                        there = await sftp.final_matches(place, name, f.size)
                    except NotFoundError:
                        there = False
                    if there:
                        raise UsageError(
                            f"file {file_id} is on the server as {join(place, name)}: abandoning it would send its "
                            f"records twice; run the flow instead (recovery marks it delivered)"
                        )
            with self.audit.transaction() as s:
                self.ctx.store.ledger.update_file(
                    f.id, session=s, state="abandoned",
                    error="abandoned by the operator; its records go out in the next file (the watermark did not move)",
                )  # fmt: skip
                self.audit("file.abandoned", subject=f.remote_path, outcome="warning",
                           details={"file_id": f.id, "by": "operator", "checked_server": check_server})  # fmt: skip
            if f.local_path:
                Path(f.local_path).unlink(missing_ok=True)
            if check_server:  # the server answers: take down what a killed upload left
                await self._drop_temporaries(sftp, [folder, self.flow.folder], name)
            self.result.bump("abandoned")
            self.result.files.append({"id": f.id, "remote_path": f.remote_path, "state": "abandoned"})

        return await self._lifecycle(work)

    def _pending(self, file_id: int) -> FileRow:
        f = self.ctx.store.ledger.file(file_id)
        if f is None or f.direction != "outbound" or f.flow != self.name:
            raise NotFoundError(f"no outbound file {file_id} in flow {self.name}")
        if f.state != "intent":
            hint = " (to send a delivered file again: ml-connector replay ID)" if f.state == "delivered" else ""
            raise UsageError(f"file {file_id} is {f.state}, not a pending intent{hint}")
        return f

    # --- extract, render, deliver ---------------------------------------------------------------

    def _watermark(self) -> tuple[Any, Any]:
        wm = self.ctx.store.watermarks.get_full(self.name)
        if wm is None:
            return None, None
        field_name, value, tiebreak = wm
        if field_name != self.cursor:
            raise ConfigError(
                f"flow {self.name}: its watermark is on {field_name} but the flow now uses cursor {self.cursor}; "
                f"reset it with 'ml-connector flows reset {self.name}' to send everything again"
            )
        return _decode(value), _decode(tiebreak)

    def _select(self) -> list[str] | None:
        if self.flow.entity == "ap-payments" and isinstance(self.fmt, X12Format):
            return list(self.source.x12_select)
        if not isinstance(self.fmt, CsvFormat | FixedWidthFormat):
            raise ConfigError(f"flow {self.name}: entity {self.flow.entity} cannot be written as {self.fmt.type}")
        return source_fields(self.fmt.columns)

    def _payments_x12(self) -> bool:
        return self.flow.entity == "ap-payments" and isinstance(self.fmt, X12Format)

    async def _pages(self, k: KineticPort) -> Any:
        after, after_tb = self._watermark()
        # An 820 needs each payment's APTran lines: read through the parent set ($expand), the
        # documented way; a $filter on the APTrans child set applies to CheckHed (or fails).
        expand = [self.source.child("APTrans").name] if self._payments_x12() else None
        async for page in k.extract(
            self.source.service,
            self.source.entity_set,
            cursor=self.cursor,
            after=after,
            after_tiebreak=after_tb,
            page_size=self.flow.page_size,
            select=self._select(),
            extra_filter=self.flow.filter,
            tiebreak=self.tiebreak,
            expand=expand,
        ):
            if self._payments_x12():
                await self._attach_payment_details(k, page)
            yield page

    async def _attach_payment_details(self, k: KineticPort, page: list[dict[str, Any]]) -> None:
        """Each payment's APTran lines (expanded in the page) and its vendor: one batched read per page."""
        vendors_entity = ENTITIES["vendors"]
        nums = sorted({r["VendorNum"] for r in page})
        vendors = {
            v["VendorNum"]: v
            for v in await k.query_all(
                vendors_entity.service,
                vendors_entity.entity_set,
                filter=odata.any_of("VendorNum", nums),
                select=["VendorNum", "VendorID", "Name"],
                orderby="VendorNum asc",
                expect=len(nums),
            )
        }
        for row in page:
            row["APTran"] = row.pop("APTrans", None) or []
            row["Vendor"] = vendors.get(row["VendorNum"], {})

    def _open(self, seq: int) -> _Open:
        self.staging.mkdir(parents=True, exist_ok=True)
        fmt = self.fmt
        ext = "csv" if isinstance(fmt, CsvFormat) else "x12" if isinstance(fmt, X12Format) else "txt"
        name = file_name(self.flow.filename, flow=self.name, run_id=self.run_id, seq=seq, ext=ext, now=self.now)
        fd, temp = tempfile.mkstemp(prefix=f"{self.run_id[:8]}-{seq}-", suffix=".out", dir=self.staging)
        os.close(fd)  # only the unique name is wanted; an open fd here leaked one per delivered file
        local = Path(temp)
        sink = HashingFile(local)
        renderer: Renderer
        control: dict[str, Any] = {}
        if isinstance(fmt, CsvFormat | FixedWidthFormat):
            renderer = FlatRenderer(sink, fmt, self.now.astimezone(UTC))
        else:
            if self.dry_run:
                isa13 = self.ctx.store.control_numbers.peek(self.partner_key, "ISA") + 1
                gs06 = self.ctx.store.control_numbers.peek(self.partner_key, "GS") + 1
            else:  # allocated before the intent: a crash here leaves a gap, never a reuse
                isa13 = self.ctx.store.control_numbers.allocate(self.partner_key, "ISA")[0]
                gs06 = self.ctx.store.control_numbers.allocate(self.partner_key, "GS")[0]
            renderer = X12Renderer(
                sink, fmt, isa13=isa13, gs06=gs06, when=self.now.astimezone(UTC), constants=self.flow.constants
            )
            control = {"isa13": f"{isa13:09d}", "gs06": str(gs06)}
        return _Open(renderer, local, name, seq, control=control)

    async def _extract_and_deliver(self, k: KineticPort, sftp: PartnerFiles | None) -> None:
        mapper = None if isinstance(self.fmt, X12Format) else outbound_mapper(self.fmt.columns)
        progress = self.ctx.progress
        progress.phase(f"extract {self.flow.entity}")
        current: _Open | None = None
        seq = 0
        failure: RecordError | None = None
        async for page in self._pages(k):
            if not self.dry_run:
                self.lease.renew()
                if self.ctx.stop is not None and self.ctx.stop.is_set():
                    if current is not None:  # not yet an intent: dropped; the watermark has not moved
                        current.renderer.finish()
                        current.local.unlink(missing_ok=True)
                    raise StopRequested("stop requested: files delivered so far are recorded")
            for row in page:
                if current is None:
                    seq += 1
                    current = self._open(seq)
                where = f"{self.flow.entity} {self.cursor}={row.get(self.cursor)}"
                try:
                    values = mapper(row, where) if mapper else row
                except RecordError as exc:
                    failure = RecordError(f"{where}: {exc}")
                    break
                except Exception as exc:
                    if not poison.is_internal(exc):
                        raise
                    failure = poison.render_crash(self, where, row, exc, stage="mapping")
                    break
                try:
                    current.renderer.write(values, where)
                except RecordError as exc:
                    failure = RecordError(f"{where}: {exc}")
                    break
                except Exception as exc:
                    if not poison.is_internal(exc):
                        raise
                    failure = poison.render_crash(self, where, row, exc, stage="rendering")
                    # the crash may have left part of this record in the file: it is never sent;
                    # the watermark stays at the last delivered file, so its records go out later
                    self.result.bump("records", -current.renderer.records)
                    poison.discard(current.renderer, current.local)
                    current = None
                    break
                current.last = (row.get(self.cursor), row.get(self.tiebreak) if self.tiebreak else None)
                self.result.bump("records")
                if self.flow.split_every and current.renderer.records >= self.flow.split_every:
                    await self._deliver(current, sftp)
                    current = None
            progress.advance(records=len(page))
            if failure is not None:
                break
        if current is not None and current.renderer.records:
            await self._deliver(current, sftp)
        elif current is not None:
            current.renderer.finish()
            current.local.unlink(missing_ok=True)
        if failure is not None:
            # Everything before the bad record went out; the watermark stops just before it, so
            # it is retried (and reported) by every run until the mapping or the data is fixed.
            self.audit("record.error", subject=str(failure), outcome="error")
            raise failure
        if seq == 0:
            self.audit(
                "run.no_changes",
                subject=self.name,
                outcome="info",
                details={"cursor": self.cursor, "policy": self.flow.on_no_changes},
            )
            self.result.counts.setdefault("records", 0)
            if self.flow.on_no_changes == "empty-file":
                empty = self._open(1)
                await self._deliver(empty, sftp)

    async def _deliver(self, current: _Open, sftp: PartnerFiles | None) -> None:
        renderer = current.renderer
        renderer.finish()
        sink = renderer.sink
        details: dict[str, Any] = {
            "folder": self.flow.folder,
            "name": current.name,
            "records": renderer.records,
            "cursor": self.cursor,
            "watermark": [_encode(current.last[0]), _encode(current.last[1])] if current.last else None,
            **(
                {"x12": {**current.control, "sets": getattr(renderer, "sets", []), "partner": self.partner_key}}
                if current.control
                else {}
            ),
        }
        if self.dry_run or sftp is None:
            self.result.files.append(
                {
                    "name": current.name,
                    "records": renderer.records,
                    "size": sink.size,
                    "sha256": sink.sha256,
                    "local": str(current.local),
                }
            )
            return
        ledger = self.ctx.store.ledger
        file_id = ledger.record_intent(
            flow=self.name,
            run_id=self.run_id,
            remote_path=join(self.flow.folder, current.name),
            local_path=str(current.local),
            sha256=sink.sha256,
            size=sink.size,
            details=details,
        )
        failpoint("outbound.after-intent")
        self.ctx.progress.phase(f"upload {current.name}", total=sink.size)
        try:
            final = await sftp.upload_atomic(
                current.local, self.flow.folder, current.name, on_conflict=self.flow.on_conflict, sha256=sink.sha256
            )
        except MLConnectorError as exc:
            _explain_pending(exc, file_id, join(self.flow.folder, current.name))
            raise
        failpoint("outbound.after-upload")
        self.ctx.progress.advance(files=1, nbytes=sink.size)
        kept = self.staging / "sent" / f"{file_id}.out"
        self._commit(file_id, final, details, sink.size, sink.sha256, move_watermark=True, how="uploaded",
                     kept=kept)  # fmt: skip
        failpoint("outbound.after-commit")
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.replace(current.local, kept)  # kept for replay until pruned

    def _commit(
        self,
        file_id: int,
        final: str,
        details: dict[str, Any],
        size: int,
        sha256: str,
        *,
        move_watermark: bool,
        how: str,
        kept: Path | None = None,
    ) -> None:
        """Outbound step 6: delivered + watermark + audit, in one transaction."""
        store = self.ctx.store
        with self.audit.transaction() as s:
            extra: dict[str, Any] = {"delivered_at": store.clock().isoformat(), "how": how}
            if kept is not None:
                extra["kept"] = str(kept)
            x12 = details.get("x12")
            if x12:
                extra["ack"] = "pending"
                sender, _, receiver = x12["partner"].partition(">")
                store.ledger.add_interchange(
                    direction="outbound",
                    sender=sender,
                    receiver=receiver,
                    control_number=x12["isa13"],
                    file_id=file_id,
                    groups={x12["gs06"]: {"sets": x12["sets"], "state": "sent"}},
                    state="sent",
                    session=s,
                )
            store.ledger.update_file(file_id, session=s, state="delivered", remote_path=final, details=extra)
            wm = details.get("watermark")
            if move_watermark and wm:
                store.watermarks.set(self.name, details["cursor"], wm[0], tiebreak=wm[1], run_id=self.run_id, session=s)
            self.audit(
                "file.delivered",
                subject=final,
                details={
                    "file_id": file_id,
                    "size": size,
                    "sha256": sha256,
                    "records": details["records"],
                    "how": how,
                    "watermark": wm,
                },
            )
        self.result.bump("files")
        self.result.bump("bytes", size)
        self.result.files.append(
            {"id": file_id, "remote_path": final, "records": details["records"], "size": size, "how": how}
        )
        self.ctx.progress.note(f"delivered {final} ({details['records']} records, {size} bytes)")

    # --- dry run --------------------------------------------------------------------------------

    async def _dry_run(self) -> RunResult:
        """Extract and render into a scratch folder; no lock, ledger, watermark, upload or audit."""
        self.result.state = "dry-run"
        self.staging = self.ctx.staging / "dry-run" / self.name
        shutil.rmtree(self.staging, ignore_errors=True)
        self.audit = _NullAudit(self.ctx.store, self.name, None)
        mapper = None if isinstance(self.fmt, X12Format) else outbound_mapper(self.fmt.columns)
        async with self.ctx.kinetic(self.flow.epicor, self.audit, self.name, None) as k:
            first = True
            async for page in self._pages(k):
                if first and mapper:
                    self.result.preview = [mapper(r, "preview") for r in page[:5]]
                    first = False
                break
            await self._extract_and_deliver(k, None)
        return self.result


def _explain_pending(exc: MLConnectorError, file_id: int, remote_path: str) -> None:
    """An intent that cannot be completed blocks every later run (say, a folder that does not exist):
    the error names the file and the ways out, which the operator would otherwise have to dig for."""
    exc.args = (
        f"{exc}; pending outbound file {file_id} ({remote_path}) was not delivered: the next run retries it in "
        f"the flow's current folder (fix 'folder' if it is wrong), or 'ml-connector files resend {file_id} "
        f"[--folder PATH]' now, or 'ml-connector files abandon {file_id}' (its records go out in the next file)",
    )


class _NullAudit(AuditBuffer):
    def __call__(self, kind: str, **kw: Any) -> None:
        return None

    def flush(self, session: Any = None) -> None:
        return None


async def run_outbound(ctx: RunContext, name: str, flow: OutboundFlow, *, dry_run: bool = False) -> RunResult:
    return await OutboundRun(ctx, name, flow, dry_run=dry_run).run()
