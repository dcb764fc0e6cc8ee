"""The ledger's states (DESIGN.md sections 2 and 3) as enums, with their open sets.

A leaf module: flows, the store, the CLI and the console name states through it instead of
string literals. ``StrEnum`` members equal their text, so rows written by any version compare
as before and the database keeps plain strings.
"""

from __future__ import annotations

from enum import StrEnum


class FileState(StrEnum):
    """A file in the file ledger (inbound and outbound share the table)."""

    # inbound: seen -> downloaded -> parsed -> posting -> done | error (+ duplicate, refused)
    SEEN = "seen"
    DOWNLOADED = "downloaded"
    PARSED = "parsed"
    POSTING = "posting"
    DONE = "done"
    ERROR = "error"
    DUPLICATE = "duplicate"
    REFUSED = "refused"  # a listed name never handled (unsafe, not a regular file)
    # outbound: intent -> delivered | abandoned
    INTENT = "intent"
    DELIVERED = "delivered"
    ABANDONED = "abandoned"


class RecordState(StrEnum):
    """A record of an inbound file in the record ledger."""

    PENDING = "pending"
    SENDING = "sending"  # committed before the calls: after a crash, settled by lookup
    POSTED = "posted"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the answer to a write was lost: settled by lookup before any retry


class RunState(StrEnum):
    """A run in the run ledger, and the state a ``RunResult`` reports."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    CRASHED = "crashed"  # found running with its process gone
    LOCKED = "locked"  # another process held the flow's lock: nothing was attempted
    DRY_RUN = "dry-run"


# Files a run must still finish (inbound), and intents whose upload is not confirmed (outbound).
INBOUND_OPEN: tuple[FileState, ...] = (FileState.SEEN, FileState.DOWNLOADED, FileState.PARSED, FileState.POSTING)
OPEN_FILES: tuple[FileState, ...] = (*INBOUND_OPEN, FileState.INTENT)
# Records the next posting pass takes up again.
OPEN_RECORDS: tuple[RecordState, ...] = (RecordState.PENDING, RecordState.SENDING, RecordState.UNKNOWN)
# Runs that ended well: nothing for an operator to look at.
CLEAN_RUNS: tuple[RunState, ...] = (RunState.SUCCEEDED, RunState.STOPPED)
