"""Dry runs of an inbound flow: what would be posted, changing nothing.

``run FLOW --dry-run`` lists the partner's folder, downloads to scratch and parses; with
``--file PATH`` a local sample is parsed instead and no SFTP server, Kinetic or ledger row is
touched. The readers take a name and a local path, so no ledger row is made up for them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import X12Format
from ..formats.coerce import FormatError
from ..formats.x12.remit820 import PaymentAdvice
from ..mapping import json_safe
from . import x12_inbound
from .context import AuditBuffer, RunResult
from .parsed import AckLine, FileRejected, Parsed

if TYPE_CHECKING:
    from .inbound import InboundRun


async def dry_run(run: InboundRun) -> RunResult:
    """List, download to scratch and parse (or parse the local sample); show what would be posted."""
    run.result.state = "dry-run"
    if run.sample is not None:
        sha = hashlib.sha256(run.sample.read_bytes()).hexdigest()
        preview_file(run, run.sample.name, run.sample, sha)
        return run.result
    scratch = run.ctx.staging / "dry-run" / run.name
    audit = AuditBuffer(run.ctx.store, run.name, None)
    audit.limit = 10**9  # never written
    async with run.ctx.sftp(run.flow.sftp, audit) as sftp:
        listing = await sftp.list_ready(
            run.flow.folder,
            pattern=run.flow.pattern,
            pattern_type=run.flow.pattern_type,
            settle_s=0,
            max_files=run.flow.max_files_per_poll,
        )
        for remote in listing.ready:
            local = await sftp.download(remote, scratch)
            try:
                preview_file(run, remote.name, local.path, local.sha256)
            finally:
                local.path.unlink(missing_ok=True)
    return run.result


def preview_file(run: InboundRun, name: str, local: Path, sha256: str) -> None:
    """Parse one local copy with the flow's layout and mapping; add what would be posted."""
    entry: dict[str, Any] = {"name": name, "sha256": sha256, "records": 0, "bad": 0, "problems": []}
    limit = 50 if isinstance(run.fmt, X12Format) else 5
    result = run.result
    try:
        if isinstance(run.fmt, X12Format):
            parsed = run._read_x12(name, local)
            recs: Any = parsed.records
            entry["acks"] = (
                x12_inbound.dry_run_acks(run.fmt, parsed, run.ctx.clock())
                if run.flow.entity != "acknowledgments"
                else []
            )
        else:
            recs = run._records(name, local)
        rec: Parsed
        for rec in recs:
            entry["records"] += 1
            if rec.error:
                entry["bad"] += 1
                if len(entry["problems"]) < 20:
                    entry["problems"].append(f"{rec.position}: {rec.error}")
            elif len(result.preview) < limit and rec.fields:
                payload = rec.fields
                if isinstance(payload, PaymentAdvice):
                    result.preview.append({"file": name, "record": rec.position, **x12_inbound.preview(payload)})
                elif isinstance(payload, AckLine):
                    status = payload.status
                    result.preview.append({"file": name, "record": rec.position, "kind": status.kind,
                                           "accepted": status.accepted, "codes": list(status.errors)})  # fmt: skip
                else:
                    result.preview.append({k: json_safe(v) for k, v in payload.items()} or {"record": rec.position})
    except (FileRejected, FormatError) as exc:
        entry["error"] = str(exc)
    result.files.append(entry)
    result.bump("records", entry["records"])
    if entry["bad"] or "error" in entry:
        result.bump("records_failed", entry["bad"])
