"""Inbound run (DESIGN.md section 2): partner files on SFTP -> records in Kinetic, exactly once.

File ledger: ``seen -> downloaded -> parsed -> posting -> done | error`` (+ ``duplicate``); each
state is written only after its effect is confirmed. Record ledger: ``pending -> sending ->
posted | failed | unknown``; ``sending`` is committed before the calls, so after a crash those
records are settled by looking them up (the recipes find by natural key before any create).
Records are never held in the database: posting re-reads the staged file in order and joins it
with the open ledger rows, so memory does not grow with the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import states
from ..config import CsvFormat, FixedWidthFormat, InboundFlow, X12Format
from ..errors import (
    FatalError,
    NotFoundError,
    RecordError,
)
from ..formats.coerce import FormatError
from ..formats.csvfile import CsvReader
from ..formats.fixedwidth import FixedWidthReader
from ..mapping import inbound_mapper, json_safe, natural_key, resolve_format
from ..sftp.client import RemoteFile, join
from ..store.ledger import INBOUND_OPEN, FileRow
from . import poison, posting, preview, refused, x12_inbound
from .base import FlowRun
from .context import RunContext, RunResult, failpoint
from .parsed import FileRejected, Parsed, X12Parse
from .ports import KineticPort, PartnerFiles

OPEN_RECORDS = tuple(s.value for s in states.OPEN_RECORDS)
REQUIRED = {"vendors": ("VendorID",), "ap-invoices": ("VendorNumVendorID", "InvoiceNum")}
MAX_PROBLEMS = 100


class InboundRun(FlowRun):
    direction = "inbound"

    def __init__(self, ctx: RunContext, name: str, flow: InboundFlow, *, dry_run: bool = False,
                 sample: Path | None = None) -> None:  # fmt: skip
        super().__init__(ctx, name, flow)
        self.sample = sample  # dry run on this local file instead of the SFTP folder
        self.flow: InboundFlow = flow
        self.dry_run = dry_run
        self.fmt = resolve_format(flow)
        self.ledger = ctx.store.ledger
        self.staging = ctx.staging / "inbound" / name
        self.mapper = None if isinstance(self.fmt, X12Format) else inbound_mapper(self.fmt.columns, flow.constants)

    # --- entry ----------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        if self.dry_run:
            return await self._dry_run()
        return await self._lifecycle(self._work)

    async def replay(self, file_id: int) -> RunResult:
        """Re-process one file after a mapping fix: posted records stay posted, failed ones retry."""
        self.ctx.trigger = "replay"

        async def work(k: KineticPort, sftp: PartnerFiles) -> None:
            await self._replay(k, sftp, file_id)

        return await self._lifecycle(work)

    def _outcome(self) -> str:
        bad = sum(self.result.counts.get(k, 0) for k in ("files_error", "records_failed", "files_internal_error",
                                                          "files_refused"))  # fmt: skip
        unsettled = self.result.counts.get("files_open", 0)
        return "succeeded" if not bad and not unsettled else "partial"

    async def _work(self, k: KineticPort, sftp: PartnerFiles) -> None:
        # 1. finish what a crashed run left open, oldest first
        attempted: set[int] = set()  # one attempt per file per run (a poison file is listed again)
        for f in self.ledger.files(flow=self.name, direction="inbound", states=INBOUND_OPEN):
            self.ctx.check_stop()
            self.result.bump("resumed")
            attempted.add(f.id)
            await self._process(k, sftp, f)
        # 2. new files
        if self.flow.settle_seconds:
            settle = self.flow.settle_seconds
            self.ctx.progress.phase(f"list {self.flow.folder}: new files must hold still {settle:g} s")
        listing = await sftp.list_ready(
            self.flow.folder,
            pattern=self.flow.pattern,
            pattern_type=self.flow.pattern_type,
            settle_s=self.flow.settle_seconds,
            min_age_s=self.flow.min_age_seconds,
            max_files=self.flow.max_files_per_poll,
        )
        refused.report_listing(self, listing)
        if listing.waiting:
            self.result.bump("files_waiting", len(listing.waiting))
        for remote in listing.ready:
            self.ctx.check_stop()
            self.lease.renew()
            row, created = self.ledger.see(
                flow=self.name, run_id=self.run_id, remote_path=remote.path, size=remote.size, mtime=remote.mtime
            )
            if not created and row.state not in INBOUND_OPEN:
                self.result.bump("files_skipped")  # processed before and left in place (no archive folder)
                continue
            if row.id in attempted:
                continue
            if created:
                self.audit(
                    "file.seen",
                    subject=remote.path,
                    details={"file_id": row.id, "size": remote.size, "mtime": remote.mtime},
                )
            await self._process(k, sftp, row, remote)

    # --- one file through its states ------------------------------------------------------------

    async def _process(self, k: KineticPort, sftp: PartnerFiles, f: FileRow, remote: RemoteFile | None = None) -> None:
        self.ctx.progress.phase(f"file {f.name}")
        try:
            if f.state == "seen":
                f = await self._download(sftp, f, remote)
                if f.state != "downloaded":
                    return
            if f.state == "downloaded":
                f = await self._parse(sftp, f)
                if f.state != "parsed":
                    return
            await self._post(k, sftp, f)
        except FileRejected as exc:
            await self._reject(sftp, f, str(exc), exc.problems)
        except RecordError as exc:  # bad input a reader did not wrap: this file only, at once
            await self._reject(sftp, f, str(exc), [{"where": f.name, "message": str(exc)}])
        except Exception as exc:
            if not poison.is_internal(exc):
                raise  # transient / fatal / connection / stop: the run ends, the next one resumes
            await poison.record_internal_error(self, sftp, f, exc)

    async def _download(self, sftp: PartnerFiles, f: FileRow, remote: RemoteFile | None) -> FileRow:
        try:
            local = await sftp.download(remote or f.remote_path, self.staging, expected_size=f.size)
        except NotFoundError:
            gone = "the file disappeared from the server before download"
            f = self.ledger.update_file(f.id, state="error", error=gone)
            self.audit("alert.file_vanished", subject=f.remote_path, outcome="error", details={"file_id": f.id})
            self.audit.flush()
            self.result.bump("files_error")
            return f
        failpoint("inbound.after-download")
        earlier = self.ledger.same_content(self.name, local.sha256, exclude=f.id)
        with self.audit.transaction() as s:
            if earlier is not None and self.flow.on_duplicate == "skip":
                f = self.ledger.update_file(
                    f.id,
                    session=s,
                    state="duplicate",
                    sha256=local.sha256,
                    local_path=str(local.path),
                    run_id=self.run_id,
                    error=f"same bytes as file {earlier.id} ({earlier.remote_path})",
                    details={"duplicate_of": earlier.id},
                )
                self.audit(
                    "alert.duplicate_file",
                    subject=f.remote_path,
                    outcome="warning",
                    details={"file_id": f.id, "duplicate_of": earlier.id, "sha256": local.sha256},
                )
            else:
                f = self.ledger.update_file(
                    f.id,
                    session=s,
                    state="downloaded",
                    sha256=local.sha256,
                    local_path=str(local.path),
                    run_id=self.run_id,
                )
        self.result.bump("files_downloaded")
        self.ctx.progress.advance(files=1, nbytes=local.size)
        if f.state == "duplicate":
            self.result.bump("files_duplicate")
            await self._move(sftp, f, self.flow.archive_folder)
        return f

    # --- parsing --------------------------------------------------------------------------------

    def _source(self, f: FileRow) -> Iterator[Parsed]:
        """The staged file's records in order, whatever its format."""
        if f.local_path is None:
            raise FatalError(f"{f.remote_path}: no staged copy to read")
        if isinstance(self.fmt, X12Format):
            return iter(self._read_x12(f.name, f.local_path).records)
        return self._records(f.name, f.local_path)

    def _records(self, name: str, local: str | Path) -> Iterator[Parsed]:
        """A local file's records in order (CSV / fixed-width), streaming."""
        assert self.mapper is not None  # set in __init__ for every non-X12 format
        fmt = self.fmt
        with Path(local).open("rb") as fh:
            reader = (
                CsvReader(fh, fmt, name=name)
                if isinstance(fmt, CsvFormat)
                else FixedWidthReader(fh, fmt, name=name)
                if isinstance(fmt, FixedWidthFormat)
                else None
            )
            assert reader is not None
            for rec in reader:
                if rec.error is not None:
                    yield Parsed(rec.index, rec.position, None, rec.error)
                    continue
                try:
                    fields = self.mapper(rec.values, f"{name}: {rec.position}")
                except RecordError as exc:
                    yield Parsed(rec.index, rec.position, None, str(exc))
                    continue
                missing = [k for k in REQUIRED.get(self.flow.entity, ()) if fields.get(k) in (None, "")]
                if missing:
                    yield Parsed(rec.index, rec.position, None, f"{', '.join(missing)} is required (the record's key)")
                    continue
                yield Parsed(rec.index, rec.position, fields, None, natural_key(self.flow.entity, fields))

    def _read_x12(self, name: str, local: str | Path) -> X12Parse:
        return x12_inbound.read_x12_file(self, name, local)

    async def _parse(self, sftp: PartnerFiles, f: FileRow) -> FileRow:
        self.ledger.clear_records(f.id)  # a crash mid-parse left a partial list; nothing was posted
        assert f.sha256 is not None
        acks: list[str] = []
        if isinstance(self.fmt, X12Format):
            read = await x12_inbound.parse_x12(self, sftp, f)
            if read is None:  # a re-sent interchange: TA1 025, file rejected
                return self.ledger.file(f.id) or f
            parsed, acks = read
            records: Any = iter(parsed.records)
        else:
            try:
                records = self._source(f)
                first = next(records, None)
            except FormatError as exc:
                raise FileRejected(str(exc), [{"where": f.name, "message": str(exc)}]) from None
            records = _chain(first, records)
        total = bad = 0
        problems: list[dict[str, str]] = []
        batch: list[tuple[int, str, str | None, str, str | None]] = []
        try:
            for rec in records:
                total += 1
                if rec.error is not None:
                    bad += 1
                    if len(problems) < MAX_PROBLEMS:
                        problems.append({"where": f"{f.name}: {rec.position}", "message": rec.error})
                batch.append((rec.idx, rec.position, rec.key, "failed" if rec.error else "pending", rec.error))
                if len(batch) >= 1000:
                    self.ledger.add_records(f.id, f.sha256, batch)
                    batch = []
                    self.lease.renew()
        except FormatError as exc:
            raise FileRejected(str(exc), [*problems, {"where": f.name, "message": str(exc)}]) from None
        self.ledger.add_records(f.id, f.sha256, batch)
        x12 = isinstance(self.fmt, X12Format)
        if bad and ((x12 and bad == total) or (not x12 and self.flow.on_bad_records == "reject-file")):
            self.ledger.clear_records(f.id)
            raise FileRejected(f"{f.name}: {bad} of {total} records cannot be read", problems)
        if total == 0 and not x12:
            raise FileRejected(f"{f.name}: the file holds no records", [{"where": f.name, "message": "no records"}])
        for p in problems[:20]:
            self.audit("record.rejected", subject=p["where"], outcome="error", details={"error": p["message"]})
        with self.audit.transaction() as s:
            f = self.ledger.update_file(
                f.id, session=s, state="parsed", details={"records": total, "bad_records": bad, "acks": acks}
            )
            self.audit("file.parsed", subject=f.remote_path, details={"file_id": f.id, "records": total, "bad": bad})
        failpoint("inbound.after-parse")
        self.result.bump("records_read", total)
        if bad:
            self.result.bump("records_failed", bad)
        return f

    async def _write_ack(self, sftp: PartnerFiles, f: FileRow, text: str, name: str) -> str:
        """Written once: the name is fixed per inbound file, so a resumed run finds it already there."""
        assert self.flow.ack_folder is not None
        path = join(self.flow.ack_folder, name)
        if await sftp.exists(path):
            return path
        await sftp.ensure_folder(self.flow.ack_folder)
        written = await sftp.write_bytes_atomic(text.encode(), self.flow.ack_folder, name, self.staging / "acks")
        self.result.bump("acks_sent")
        return written

    # --- posting --------------------------------------------------------------------------------

    def _open_records(self, f: FileRow) -> Iterator[Parsed]:
        """Records still to post, in file order: the re-read file merged with the open ledger rows,
        both in index order and both streamed (the open rows are read in pages), so memory stays
        flat however many records the file holds."""

        def open_indexes() -> Iterator[int]:
            after = -1
            while page := self.ledger.records(f.id, OPEN_RECORDS, after=after, limit=5000):
                yield from (r.idx for r in page)
                after = page[-1].idx

        wanted = open_indexes()
        nxt = next(wanted, None)
        if nxt is None:
            return
        source = self._source(f)
        for rec in source:
            while nxt is not None and nxt < rec.idx:
                nxt = next(wanted, None)
            if nxt is None:
                return
            if rec.idx == nxt and rec.fields is not None:
                yield rec

    async def _post(self, k: KineticPort, sftp: PartnerFiles, f: FileRow) -> None:
        if f.state != "posting":
            self.ledger.update_file(f.id, state="posting", run_id=self.run_id)
        if f.local_path is None or not Path(f.local_path).is_file():
            f = await self._restage(sftp, f)
        batch: list[Parsed] = []
        for rec in self._open_records(f):
            batch.append(rec)
            if len(batch) >= self.flow.batch_size:
                await self._post_batch(k, f, batch)
                batch = []
        if batch:
            await self._post_batch(k, f, batch)
        await self._finish(sftp, f)

    async def _restage(self, sftp: PartnerFiles, f: FileRow) -> FileRow:
        """The staged copy is gone (cleaned up, another machine): fetch it again and check it."""
        local = await sftp.download(str(f.details.get("moved_to") or f.remote_path), self.staging)
        if local.sha256 != f.sha256:
            local.path.unlink(missing_ok=True)
            raise FatalError(f"{f.remote_path} changed on the server while it was being posted (sha256 differs)")
        return self.ledger.update_file(f.id, local_path=str(local.path))

    async def _post_batch(self, k: KineticPort, f: FileRow, batch: list[Parsed]) -> None:
        await posting.post_batch(self, k, f, batch)  # the entity's recipe, from the registry

    # --- replay ---------------------------------------------------------------------------------

    async def _replay(self, k: KineticPort, sftp: PartnerFiles, file_id: int) -> None:
        f = self.ledger.file(file_id)
        if f is None or f.flow != self.name or f.direction != "inbound":
            raise NotFoundError(f"no inbound file {file_id} in flow {self.name}")
        if f.state in INBOUND_OPEN:
            raise FatalError(
                f"file {file_id} is still {f.state}: the next run finishes it; replay is for finished files"
            )
        self.audit("replay.start", subject=f.remote_path, details={"file_id": f.id, "was": f.state})
        if f.local_path is None or not Path(f.local_path).is_file():
            f = await self._restage(sftp, f)
        rows = self.ledger.records(f.id)
        if not rows:  # rejected whole, or a duplicate: read it again with today's mapping
            f = await self._parse(sftp, self.ledger.update_file(f.id, state="downloaded", error=None))
            if f.state != "parsed":
                return
        else:
            failed = {r.idx for r in rows if r.state == "failed"}
            source = self._source(f)
            outcomes: list[tuple[int, str, dict[str, Any], str | None]] = []
            for rec in source:
                if rec.idx in failed:
                    outcomes.append((rec.idx, "failed" if rec.error else "pending", {}, rec.error))
            with self.audit.transaction() as s:
                self.ledger.settle_records(f.id, outcomes, session=s)
                f = self.ledger.update_file(f.id, session=s, state="posting", error=None, run_id=self.run_id)
                self.audit("replay.records", subject=f.remote_path,
                           details={"file_id": f.id, "retrying": sum(1 for o in outcomes if o[1] == "pending"),
                                    "still_failing": sum(1 for o in outcomes if o[1] == "failed"),
                                    "posted_before": sum(1 for r in rows if r.state == "posted")})  # fmt: skip
        await self._post(k, sftp, f)

    # --- finishing ------------------------------------------------------------------------------

    async def _finish(self, sftp: PartnerFiles, f: FileRow) -> None:
        states = self.ledger.record_states(f.id)
        open_ = sum(states.get(s, 0) for s in OPEN_RECORDS)
        if open_:
            self.result.bump("files_open")
            self.audit(
                "file.unsettled", subject=f.remote_path, outcome="warning", details={"file_id": f.id, "records": states}
            )
            self.audit.flush()
            return  # unknown outcomes: the next run settles them by lookup before any retry
        failed = states.get("failed", 0)
        error = failed and self.flow.on_failed_records == "error"
        sidecar = None
        if failed:
            rows = self.ledger.records(f.id, ["failed"], limit=1000)
            sidecar = {
                "reason": f"{failed} of {sum(states.values())} records failed",
                "problems": [{"where": f"{f.name}: {r.position}", "message": r.error or ""} for r in rows],
            }
            self.audit(
                "alert.records_failed",
                subject=f.remote_path,
                outcome="error",
                details={"file_id": f.id, "failed": failed},
            )
        moved = await self._move(
            sftp, f, self.flow.error_folder if error else self.flow.archive_folder, sidecar=sidecar
        )
        final = "error" if failed else "done"
        with self.audit.transaction() as s:
            self.ledger.update_file(
                f.id,
                session=s,
                state=final,
                error=sidecar["reason"] if sidecar else None,
                details={"records_state": states, "moved_to": moved},
            )
            self.audit(
                f"file.{final}",
                subject=f.remote_path,
                outcome="ok" if final == "done" else "error",
                details={"file_id": f.id, "records": states, "moved_to": moved},
            )
        failpoint("inbound.after-finish")
        self.result.bump(f"files_{final}")
        self.result.files.append({"id": f.id, "name": f.name, "state": final, "records": states, "moved_to": moved})
        self.ctx.progress.note(f"{f.name}: {final} ({', '.join(f'{v} {k}' for k, v in sorted(states.items()))})")

    async def _reject(self, sftp: PartnerFiles, f: FileRow, reason: str, problems: list[dict[str, str]]) -> None:
        """The whole file to the error folder with ``NAME.error.json``, and an alert."""
        self.audit(
            "alert.file_rejected",
            subject=f.remote_path,
            outcome="error",
            details={"file_id": f.id, "reason": reason, "problems": problems[:20]},
        )
        moved = await self._move(sftp, f, self.flow.error_folder, sidecar={"reason": reason, "problems": problems})
        with self.audit.transaction() as s:
            self.ledger.update_file(
                f.id, session=s, state="error", error=reason, details={"problems": problems[:20], "moved_to": moved}
            )
            self.audit(
                "file.error",
                subject=f.remote_path,
                outcome="error",
                details={"file_id": f.id, "reason": reason, "moved_to": moved},
            )
        self.result.bump("files_error")
        self.result.files.append({"id": f.id, "name": f.name, "state": "error", "reason": reason, "moved_to": moved})
        self.ctx.progress.note(f"{f.name}: error ({reason})")

    async def _move(
        self, sftp: PartnerFiles, f: FileRow, folder: str | None, sidecar: dict[str, Any] | None = None
    ) -> str | None:
        """Move the remote file out of the inbound folder (if a folder is set) + write its sidecar."""
        if folder is None:
            return None
        current = str(f.details.get("moved_to") or f.remote_path)
        moved: str | None
        if current.rsplit("/", 1)[0] == folder.rstrip("/"):
            moved = current  # already there (a replayed file that stays where it is)
        else:
            try:
                moved = await sftp.move(current, folder)
            except NotFoundError:
                moved = None  # already moved by a run that crashed before recording it
        if sidecar is not None:
            body = {
                "file": f.name,
                "remote_path": f.remote_path,
                "flow": self.name,
                "file_id": f.id,
                "sha256": f.sha256,
                "size": f.size,
                "at": self.ctx.clock().isoformat(),
                **sidecar,
            }
            name = (moved.rsplit("/", 1)[-1] if moved else f.name) + ".error.json"
            if not await sftp.exists(join(folder, name)):
                data = json.dumps(body, indent=2, default=json_safe).encode()
                await sftp.write_bytes_atomic(data, folder, name, self.staging / "sidecars")
        return moved

    # --- dry run --------------------------------------------------------------------------------

    async def _dry_run(self) -> RunResult:
        return await preview.dry_run(self)


def _chain(first: Parsed | None, rest: Iterator[Parsed]) -> Iterator[Parsed]:
    if first is not None:
        yield first
    yield from rest


async def run_inbound(ctx: RunContext, name: str, flow: InboundFlow, *, dry_run: bool = False,
                      sample: Path | None = None) -> RunResult:  # fmt: skip
    return await InboundRun(ctx, name, flow, dry_run=dry_run, sample=sample).run()
