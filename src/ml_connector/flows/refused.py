"""Refused and temporary names in an inbound listing, made visible (issue 17).

A refused name (unsafe: control characters, path separators, a leading '-'; or not a regular
file: a symlink) is never downloaded. It gets one ledger row in state ``refused`` with the reason,
appears in the run's files and counts (``files_refused``: the run ends ``partial``, exit 1, while
the name is still there), and is alerted once per name, not on every run. Names that look
temporary (``.x.csv``, ``x.csv.part``) are skipped as DESIGN.md says, and counted
(``files_temporary``) so an upload that never finished is not invisible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..sftp.client import Listing, join

if TYPE_CHECKING:
    from .inbound import InboundRun


def report_listing(run: InboundRun, listing: Listing) -> None:
    """Ledger rows, counts, files and (first time only) alerts for what the listing set aside."""
    for name, reason in listing.refused:
        path = join(run.flow.folder, name)
        row, first = run.ledger.refuse(flow=run.name, run_id=run.run_id, remote_path=path, reason=reason)
        if first:
            run.audit("alert.file_refused", subject=path, outcome="warning",
                      details={"file_id": row.id, "reason": reason})  # fmt: skip
        else:
            run.audit("file.refused", subject=path, outcome="warning", details={"file_id": row.id, "reason": reason})
        run.result.bump("files_refused")
        run.result.files.append({"id": row.id, "name": repr(name) if not name.isprintable() else name,
                                 "state": "refused", "reason": reason})  # fmt: skip
        run.ctx.progress.note(f"refused {name!r}: {reason}")
    if listing.temporary:
        run.result.bump("files_temporary", len(listing.temporary))
        run.audit("file.temporary_skipped", subject=run.flow.folder, outcome="info",
                  details={"names": listing.temporary[:50]})  # fmt: skip
