"""The store's public read API for people: run history, a run's story, the file ledger, search.

Everything the ``runs`` command and the operator console show is read here, so pages and
templates hold no SQL. Lists page by **keyset** (the last row's sort key is the cursor), never by
offset: a page costs the same at row 10 and at row 1,000,000, and rows arriving while someone
pages do not shift what they see. Every query below is served by an index of migration 0006 or
earlier (``bench/console.py`` measures them at 100k runs and 1M records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from ..errors import NotFoundError, UsageError
from . import models as m
from .health import DEFAULT_ACK_TIMEOUT_MINUTES, FlowHealth, read_flows
from .ledger import FileRow, RecordRow, _file, _run
from .readers import EngineReader
from .rows import RunRow
from .store import AuditRecord

if TYPE_CHECKING:
    from .store import Store

RUN_OUTCOMES = ("running", "succeeded", "partial", "failed", "crashed", "stopped", "interrupted")
MAX_PAGE = 500


@dataclass(frozen=True)
class Page:
    """One page of a keyset-paged list; ``next`` is the cursor of the following page (or None)."""

    rows: list[Any]
    next: str | None


@dataclass(frozen=True)
class RunSummary:
    """A run as history shows it: when, how long, what it counted, how it ended and why."""

    run: RunRow

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def short_id(self) -> str:
        return self.run.id[:8]

    @property
    def duration_s(self) -> float | None:
        if self.run.finished_at is None:
            return None
        return max(0.0, (self.run.finished_at - self.run.started_at).total_seconds())

    @property
    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.run.counts.items() if isinstance(v, int | float) and k != "exit_code"}

    @property
    def created(self) -> int:
        return self.counts.get("records_created", 0)

    @property
    def updated(self) -> int:
        return self.counts.get("records_updated", 0)

    @property
    def records(self) -> int:
        """Records delivered (outbound) or posted (inbound)."""
        c = self.counts
        return c.get("records", 0) + c.get("records_posted", 0)

    @property
    def failed(self) -> int:
        return self.counts.get("records_failed", 0)

    @property
    def files(self) -> int:
        c = self.counts
        return sum(c.get(k, 0) for k in ("files", "files_done", "files_error", "files_duplicate"))

    @property
    def reason(self) -> str:
        """Why it ended as it did: the run's error, else what its counts say went wrong."""
        if self.run.error:
            return self.run.error
        c = self.counts
        parts = []
        if c.get("files_error"):
            parts.append(f"{c['files_error']} file(s) in error")
        if c.get("records_failed"):
            parts.append(f"{c['records_failed']} record(s) failed")
        if c.get("records_unknown"):
            parts.append(f"{c['records_unknown']} record(s) with unknown outcome")
        if c.get("files_duplicate"):
            parts.append(f"{c['files_duplicate']} duplicate file(s)")
        return "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        r = self.run
        return {
            "id": r.id,
            "flow": r.flow,
            "direction": r.direction,
            "trigger": r.trigger,
            "outcome": r.state,
            "started_at": r.started_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "duration_s": self.duration_s,
            "counts": self.counts,
            "reason": self.reason or None,
        }


@dataclass(frozen=True)
class RunDetail:
    """A run's page: the run, its files, the records of those files, its audit events in order."""

    summary: RunSummary
    files: list[FileRow]
    records: dict[int, list[RecordRow]]
    events: Page


@dataclass(frozen=True)
class FileDetail:
    """A file's page: ledger row, records with Kinetic keys, why it was rejected, acks both ways."""

    file: FileRow
    records: Page
    record_states: dict[str, int]
    problems: list[dict[str, str]]
    acks_sent: list[str]
    interchanges: list[dict[str, Any]]
    partner_ack: dict[str, Any] | None
    control_numbers: dict[str, str]


@dataclass(frozen=True)
class SearchHit:
    file: FileRow
    matched: str  # what matched: "file name", "ISA13 000000123", "record V001/INV-9"


@dataclass
class FlowOverview:
    """One flow on the overview: the ledger's health (``store/health.py``, as ``status`` counts it)
    and runs and records per day for a sparkline; the caller adds schedule and config facts."""

    flow: str
    last: RunSummary | None
    counts: FlowHealth
    days: list[tuple[str, int, int]] = field(default_factory=list)  # (YYYY-MM-DD, runs, records)

    @property
    def health(self) -> str:
        return self.counts.word(self.last.run if self.last else None)


def _cursor_time(value: str, what: str) -> tuple[datetime, str]:
    try:
        at, _, ident = value.partition("|")
        parsed = datetime.fromisoformat(at)
    except ValueError:
        raise UsageError(f"{what}: not a page cursor") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), ident


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


class Views:
    """Read-only queries for the ``runs`` command and the console (``Views(store)``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _prefix(self, column: Any, prefix: str) -> list[Any]:
        """``column`` starts with ``prefix``, in a form the backend answers from an index."""
        conditions = [column.startswith(prefix, autoescape=True)]
        if self._store.engine.dialect.name == "sqlite":
            # SQLite's LIKE is case-insensitive and so skips a binary index: a range keeps it on one.
            conditions += [column >= prefix, column < prefix + "\uffff"]
        return conditions

    # --- runs -----------------------------------------------------------------------------------

    def runs(
        self,
        *,
        flow: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> Page:
        """Runs newest first; ``after`` is the ``next`` cursor of the previous page."""
        limit = _limit(limit)
        q = select(m.Run)
        if flow:
            q = q.where(m.Run.flow == flow)
        if outcome:
            q = q.where(m.Run.state == outcome)
        if since is not None:
            q = q.where(m.Run.started_at >= since)
        if until is not None:
            q = q.where(m.Run.started_at < until)
        if after:
            at, ident = _cursor_time(after, "runs")
            q = q.where(or_(m.Run.started_at < at, and_(m.Run.started_at == at, m.Run.id < ident)))
        q = q.order_by(m.Run.started_at.desc(), m.Run.id.desc()).limit(limit + 1)
        with self._store.session() as s:
            rows = [RunSummary(_run(r)) for r in s.scalars(q)]
        nxt = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1].run
            nxt = f"{last.started_at.isoformat()}|{last.id}"
        return Page(rows, nxt)

    def resolve_run(self, ident: str) -> RunRow:
        """A run by its id or the short form tables show (a unique prefix, 4+ characters)."""
        ident = ident.strip().lower()
        if len(ident) < 4:
            raise UsageError(f"run id {ident!r}: give at least 4 characters")
        with self._store.session() as s:
            exact = s.get(m.Run, ident)
            if exact is not None:
                return _run(exact)
            hits = list(s.scalars(select(m.Run).where(*self._prefix(m.Run.id, ident)).order_by(m.Run.id).limit(3)))
        if not hits:
            raise NotFoundError(f"no run {ident!r} (see 'ml-connector runs')")
        if len(hits) > 1:
            raise UsageError(f"run id {ident!r} is ambiguous ({', '.join(h.id for h in hits[:2])}, ...): give more")
        return _run(hits[0])

    def run_detail(self, ident: str, *, events_after: int = 0, events_limit: int = 200) -> RunDetail:
        """A run with its files, their first records and its audit events in order."""
        run = self.resolve_run(ident)
        files = self._store.ledger.files(run_id=run.id, limit=200)
        records = {f.id: self._store.ledger.records(f.id, limit=50) for f in files[:20]}
        return RunDetail(RunSummary(run), files, records, self.audit_by_run(run.id, after=events_after,
                                                                            limit=events_limit))  # fmt: skip

    def audit_by_run(self, run_id: str, *, after: int = 0, limit: int = 200) -> Page:
        """A run's audit events oldest first (API calls, transfers, records), keyset on the id."""
        limit = _limit(limit)
        q = (
            select(m.AuditEvent)
            .where(m.AuditEvent.run_id == run_id, m.AuditEvent.id > after)
            .order_by(m.AuditEvent.id)
            .limit(limit + 1)
        )
        with self._store.session() as s:
            rows = [
                AuditRecord(r.id, r.at, r.run_id, r.flow, r.kind, r.subject, r.outcome, r.duration_ms, r.details)
                for r in s.scalars(q)
            ]
        nxt = str(rows[limit - 1].id) if len(rows) > limit else None
        return Page(rows[:limit], nxt)

    # --- files ----------------------------------------------------------------------------------

    def files(
        self,
        *,
        flow: str | None = None,
        direction: str | None = None,
        state: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> Page:
        """The file ledger newest first, keyset on the id."""
        limit = _limit(limit)
        q = select(m.FileEntry)
        if flow:
            q = q.where(m.FileEntry.flow == flow)
        if direction:
            q = q.where(m.FileEntry.direction == direction)
        if state:
            q = q.where(m.FileEntry.state == state)
        if after:
            if not after.isdigit():
                raise UsageError("files: not a page cursor")
            q = q.where(m.FileEntry.id < int(after))
        q = q.order_by(m.FileEntry.id.desc()).limit(limit + 1)
        with self._store.session() as s:
            rows = [_file(r) for r in s.scalars(q)]
        nxt = str(rows[limit - 1].id) if len(rows) > limit else None
        return Page(rows[:limit], nxt)

    def file_detail(self, file_id: int, *, records_after: int = -1, records_limit: int = 100) -> FileDetail:
        """One file with its records, the reason it failed, and the acks sent or received."""
        f = self._store.ledger.file(file_id)
        if f is None:
            raise NotFoundError(f"no file {file_id} in the ledger")
        with self._store.session() as s:
            ics = [
                {
                    "direction": r.direction,
                    "sender": r.sender,
                    "receiver": r.receiver,
                    "isa13": r.control_number,
                    "groups": dict(r.groups or {}),
                    "state": r.state,
                }
                for r in s.scalars(select(m.X12Interchange).where(m.X12Interchange.file_id == file_id))
            ]
        problems = [
            {"where": str(p.get("where", "")), "message": str(p.get("message", ""))}
            for p in f.details.get("problems") or []
            if isinstance(p, dict)
        ]
        if not problems and f.state == "error":
            # Failed records carry the failing line and Kinetic's message in their own rows.
            problems = [
                {"where": f"{f.name}: {r.position}", "message": r.error or ""}
                for r in self._store.ledger.records(f.id, ["failed"], limit=20)
            ]
        partner_ack = None
        if f.direction == "outbound" and f.details.get("ack"):
            partner_ack = {
                "state": f.details.get("ack"),
                "kind": f.details.get("ack_kind"),
                "codes": f.details.get("ack_codes") or [],
            }
        return FileDetail(
            file=f,
            records=self.records_by_file(file_id, after=records_after, limit=records_limit),
            record_states=self._store.ledger.record_states(file_id),
            problems=problems,
            acks_sent=[str(a) for a in f.details.get("acks") or []],
            interchanges=ics,
            partner_ack=partner_ack,
            control_numbers=control_numbers(f, ics),
        )

    def records_by_file(self, file_id: int, *, after: int = -1, limit: int = 100, state: str | None = None) -> Page:
        """A file's records in file order, keyset on the record index."""
        limit = _limit(limit)
        rows = self._store.ledger.records(file_id, [state] if state else None, after=after, limit=limit + 1)
        nxt = str(rows[limit - 1].idx) if len(rows) > limit else None
        return Page(rows[:limit], nxt)

    def search(self, text: str, *, limit: int = 50) -> list[SearchHit]:
        """Files by name, X12 control number (ISA13), or a record's vendor id / invoice number."""
        text = text.strip()
        if not text:
            return []
        limit = _limit(limit)
        matched: dict[int, str] = {}
        found: dict[int, FileRow] = {}
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._store.session() as s:
            if text.isdigit():
                # ISA13 is stored zero-padded to 9 digits.
                q = select(m.X12Interchange.file_id, m.X12Interchange.control_number).where(
                    m.X12Interchange.control_number.in_({text, text.zfill(9)})
                )
                for file_id, isa13 in s.execute(q.limit(limit)):
                    if file_id is not None:
                        matched.setdefault(int(file_id), f"ISA13 {isa13}")
            # Only (id, remote_path) are read, so the scan stays on the narrow columns.
            by_name = (
                select(m.FileEntry.id)
                .where(m.FileEntry.remote_path.like("%" + escaped + "%", escape="\\"))
                .order_by(m.FileEntry.id.desc())
                .limit(limit)
            )
            for (fid,) in s.execute(by_name):
                matched.setdefault(int(fid), "file name")
            # Natural keys: VendorID for vendors, "VendorID/InvoiceNum" for invoices (mapping.natural_key).
            key = m.RecordEntry.natural_key
            for wanted in (key == text, and_(*self._prefix(key, text + "/"))):
                for file_id, nk in s.execute(select(m.RecordEntry.file_id, key).where(wanted).limit(limit)):
                    matched.setdefault(int(file_id), f"record {nk}")
            if "/" not in text and not matched:
                # An invoice number is the part after "/": a scan of the natural-key index only
                # (record ids first, so SQLite answers from the covering index), then their files;
                # done only when nothing cheaper matched, as it reads the whole index.
                ids = s.scalars(
                    select(m.RecordEntry.id).where(key.like("%/" + escaped + "%", escape="\\")).limit(limit)
                ).all()
                if ids:
                    for file_id, nk in s.execute(
                        select(m.RecordEntry.file_id, key).where(m.RecordEntry.id.in_(list(ids)))
                    ):
                        matched.setdefault(int(file_id), f"record {nk}")
            if matched:
                for row in s.scalars(select(m.FileEntry).where(m.FileEntry.id.in_(list(matched)))):
                    found[row.id] = _file(row)
        hits = [SearchHit(found[fid], why) for fid, why in matched.items() if fid in found]
        return sorted(hits, key=lambda h: -h.file.id)[:limit]

    # --- flows ----------------------------------------------------------------------------------

    def flow_health(
        self,
        flows: Sequence[str],
        *,
        now: datetime | None = None,
        days: int = 14,
        ack_timeout_minutes: float = DEFAULT_ACK_TIMEOUT_MINUTES,
    ) -> list[FlowOverview]:
        """Health per flow (the same reading as ``status``), with runs and records per day for a sparkline.

        A handful of grouped queries for all flows together (not a round of queries per flow):
        failed records come from the ``state`` index (few rows), runs per day from the
        ``started_at`` index over the last ``days`` days only.
        """
        now = now or datetime.now(UTC)
        names = list(flows)
        start_day = (now - timedelta(days=days - 1)).date()
        since = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
        with self._store.engine.connect() as conn:
            ledgers = read_flows(EngineReader(conn), names, now=now, ack_timeout_minutes=ack_timeout_minutes)
        per_day: dict[tuple[str, str], list[int]] = {}
        with self._store.session() as s:
            # The two counts are read in SQL (json_extract / ->>), not by decoding every JSON document.
            sent, posted = m.Run.counts["records"].as_integer(), m.Run.counts["records_posted"].as_integer()
            for flow, started, n_sent, n_posted in s.execute(
                select(m.Run.flow, m.Run.started_at, sent, posted).where(m.Run.started_at >= since)
            ):
                day = per_day.setdefault((flow, started.astimezone(UTC).date().isoformat()), [0, 0])
                day[0] += 1
                day[1] += int(n_sent or 0) + int(n_posted or 0)
        out = []
        for ledger in ledgers:
            series = []
            for i in range(days):
                d = (start_day + timedelta(days=i)).isoformat()
                runs, recs = per_day.get((ledger.flow, d), [0, 0])
                series.append((d, runs, recs))
            last = RunSummary(ledger.last) if ledger.last else None
            out.append(FlowOverview(flow=ledger.flow, last=last, counts=ledger.health, days=series))
        return out

    def last_connection_tests(self, names: Sequence[str]) -> dict[str, AuditRecord]:
        """The latest ``connection.tested`` event of each named connection (by the subject index)."""
        out: dict[str, AuditRecord] = {}
        for name in names:
            found = self._store.audit.query(subject=name, kind="connection.tested", limit=1)
            if found:
                out[name] = found[-1]
        return out


def control_numbers(f: FileRow, interchanges: list[dict[str, Any]]) -> dict[str, str]:
    """ISA13 / GS06 / ST02 of a file: from its outbound intent, or the interchanges read from it."""
    x12 = f.details.get("x12")
    out: dict[str, str] = {}
    if isinstance(x12, dict):
        for key in ("isa13", "gs06", "st02"):
            if x12.get(key) is not None:
                out[key.upper()] = str(x12[key])
        sets = x12.get("sets")
        if "ST02" not in out and isinstance(sets, list) and sets:
            out["ST02"] = ", ".join(str(x) for x in sets[:5])
    if not out and interchanges:
        out["ISA13"] = ", ".join(i["isa13"] for i in interchanges)
        groups = [g for i in interchanges for g in i["groups"]]
        if groups:
            out["GS06"] = ", ".join(groups[:5])
    return out
