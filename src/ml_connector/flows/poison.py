"""Poison files: an internal error on one inbound file never stops the flow (issue 17).

An unexpected exception (a bug, not one of ``ml_connector.errors``) while handling one file is
recorded on that file (``details.attempts``, ``details.internal_error``, the ``error`` column and a
``file.internal_error`` audit event) and the run goes on with the other files. The file keeps its
ledger state, so the next run resumes it from where it stopped; after ``max_file_attempts`` runs
that each hit an internal error, it goes to the error folder with a sidecar naming the error, an
``alert.file_poison`` is raised and, for X12, a TA1 rejection is written when the ISA is readable.

Errors of the product's own tree keep their meaning: a ``RecordError`` escaping the file (bad
input the parser did not wrap) rejects the file at once; transient, fatal, connection and stop
errors end the run as before (the next run resumes every file).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import X12Format
from ..errors import MLConnectorError, RecordError
from ..formats.x12.acks import build_ta1
from ..formats.x12.model import InterchangeSummary, X12ParseError
from ..formats.x12.reader import detect_delimiters
from ..store.ledger import FileRow
from .ports import PartnerFiles

if TYPE_CHECKING:
    from .base import FlowRun
    from .inbound import InboundRun
    from .render import Renderer

log = logging.getLogger(__name__)
MAX_ERROR_TEXT = 1000
# TA105 has no code for "the receiver failed"; 022 (invalid control structure) is the closest
# rejection a partner's translator understands, and the sidecar names the real cause.
TA1_NOTE = "022"


def is_internal(exc: BaseException) -> bool:
    """A bug rather than one of the product's typed errors (those keep their own handling)."""
    return isinstance(exc, Exception) and not isinstance(exc, MLConnectorError)


def describe(exc: BaseException) -> str:
    """``internal error: Type: message``, bounded (a hostile file must not bloat the ledger)."""
    text = f"internal error: {type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


async def record_internal_error(run: InboundRun, sftp: PartnerFiles, f: FileRow, exc: Exception) -> None:
    """Count one failed attempt on ``f``; after ``max_file_attempts`` set the file aside."""
    current = run.ledger.file(f.id) or f
    limit = run.flow.max_file_attempts
    attempts = int(current.details.get("attempts", 0)) + 1
    error = describe(exc)
    log.error("flow %s: file %s: %s (attempt %d of %d)", run.name, f.remote_path, error, attempts, limit,
              exc_info=exc)  # fmt: skip
    with run.audit.transaction() as s:
        run.ledger.update_file(f.id, session=s, error=error, details={"attempts": attempts, "internal_error": error})
        run.audit(
            "file.internal_error",
            subject=f.remote_path,
            outcome="error",
            details={"file_id": f.id, "state": current.state, "attempt": attempts, "of": limit, "error": error},
        )
    run.result.bump("files_internal_error")
    if attempts < limit:
        run.result.files.append({"id": f.id, "name": f.name, "state": current.state,
                                 "error": f"attempt {attempts} of {limit}: {error}"})  # fmt: skip
        run.ctx.progress.note(f"{f.name}: {error} (attempt {attempts} of {limit}; the next run tries again)")
        return
    acks = await _x12_rejection(run, sftp, current)
    reason = f"{f.name}: set aside after {attempts} attempts that each hit an {error}"
    run.audit(
        "alert.file_poison",
        subject=f.remote_path,
        outcome="error",
        details={"file_id": f.id, "attempts": attempts, "error": error, "reason": reason, "acks": acks},
    )
    problems = [{"where": f"{f.name} ({current.state})", "message": error}]
    await run._reject(sftp, current, reason, problems)
    run.ledger.update_file(f.id, details={"poison": {"attempts": attempts, "error": error, "acks": acks}})


async def _x12_rejection(run: InboundRun, sftp: PartnerFiles, f: FileRow) -> list[str]:
    """A TA1 ``R`` for the first interchange, when the flow acknowledges and its ISA can be read."""
    fmt = run.fmt
    if not isinstance(fmt, X12Format) or not fmt.ack or not run.flow.ack_folder:
        return []
    if run.flow.entity == "acknowledgments" or f.local_path is None or not Path(f.local_path).is_file():
        return []  # never acknowledge an acknowledgment; without the bytes there is no envelope
    with Path(f.local_path).open("rb") as fh:
        head = fh.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff")
    try:
        delimiters, isa, _end = detect_delimiters(head)
    except X12ParseError:
        return []
    ic = InterchangeSummary(isa=isa, delimiters=delimiters)
    if not all(ic.sender) or not all(ic.receiver) or not ic.control_number:
        return []
    from .x12_inbound import ack_partner_key

    isa13 = run.ctx.store.control_numbers.allocate(ack_partner_key(ic), "ISA")[0]
    try:
        ta1 = build_ta1(ic, isa13=isa13, when=run.ctx.clock(), note=TA1_NOTE, ack="R")
    except Exception:  # best effort: the file goes to the error folder with or without its TA1
        log.warning("flow %s: no TA1 for %s: its ISA cannot be echoed", run.name, f.remote_path, exc_info=True)
        return []
    return [await run._write_ack(sftp, f, ta1, f"{f.name}.{f.id}.rejected.ta1")]


# --- outbound: one record that crashes rendering ------------------------------------------------


def render_crash(run: FlowRun, where: str, row: dict[str, Any], exc: Exception, *, stage: str) -> RecordError:
    """Report an internal error on one outbound record (audit + alert) as that record's error.

    The caller stops before the record, as for a ``RecordError``: the watermark never moves past
    it, so every run reports it again until the mapping, the data or the bug is fixed.
    """
    error = describe(exc)
    log.error("flow %s: %s: %s while %s", run.name, where, error, stage, exc_info=exc)
    fields = sorted(k for k in row if k not in ("APTran", "Vendor"))[:200]  # the fields the record had
    run.audit("alert.record_render_failed", subject=where, outcome="error",
              details={"record": where, "stage": stage, "error": error, "fields": fields,
                       "reason": f"{where}: {error} while {stage}"})  # fmt: skip
    return RecordError(f"{where}: {error} while {stage} (the record and the ones after it wait; "
                       "the watermark did not move past it)")  # fmt: skip


def discard(renderer: Renderer, local: Path) -> None:
    """Drop a half-written outbound file: close what can be closed, then delete it."""
    try:
        renderer.finish()  # flushes and detaches the renderer's buffers, then closes the file
    except Exception:  # the renderer is in whatever state the crash left; the file goes anyway
        renderer.sink.close()
    finally:
        local.unlink(missing_ok=True)
