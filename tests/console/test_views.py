"""The store's read API (store/views.py) and the ``runs`` command, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ml_connector.errors import NotFoundError, UsageError
from ml_connector.store import Store
from ml_connector.store.views import Views

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def seed(store: Store, clock: Clock) -> dict[str, str]:
    """Three runs of two flows: one clean, one with a failed record, one that failed outright."""
    ledger = store.ledger
    ids = {}
    clock.at = T0
    ids["ok"] = ledger.start_run("vendors-in", "inbound", "schedule")
    f = ledger.see(flow="vendors-in", run_id=ids["ok"], remote_path="/in/good.csv", size=10, mtime=1)[0]
    ledger.update_file(f.id, state="done", sha256="a" * 64)
    ledger.add_records(f.id, "a" * 64, [(0, "line 2", "V001", "posted", None), (1, "line 3", "V002", "posted", None)])
    clock.at = T0 + timedelta(seconds=3)
    ledger.finish_run(ids["ok"], "succeeded", {"records_posted": 2, "records_created": 2, "files_done": 1})

    clock.at = T0 + timedelta(hours=1)
    ids["partial"] = ledger.start_run("invoices-in", "inbound", "schedule")
    g = ledger.see(flow="invoices-in", run_id=ids["partial"], remote_path="/in/inv.csv", size=20, mtime=2)[0]
    ledger.update_file(g.id, state="error", sha256="b" * 64, error="inv.csv: 1 of 2 records failed")
    ledger.add_records(g.id, "b" * 64, [(0, "line 2", "V001/INV-7", "posted", None),
                                         (1, "line 3", "V009/INV-8", "failed", "line 3: unknown vendor V009")])  # fmt: skip
    clock.at = T0 + timedelta(hours=1, seconds=75)
    ledger.finish_run(ids["partial"], "partial", {"records_posted": 1, "records_failed": 1, "files_error": 1})

    clock.at = T0 + timedelta(hours=2)
    ids["failed"] = ledger.start_run("vendors-in", "inbound", "cli")
    clock.at = T0 + timedelta(hours=2, seconds=1)
    ledger.finish_run(ids["failed"], "failed", {}, "connection 'kinetic': 401 Unauthorized")
    store.audit.record("run.start", flow="vendors-in", run_id=ids["failed"], subject="vendors-in")
    store.audit.record("epicor.call", flow="vendors-in", run_id=ids["failed"], subject="GET /Vendors", outcome="error")
    return ids


@pytest.fixture
def clocked(db_url: str) -> tuple[Store, Clock]:
    clock = Clock(T0)
    store = Store.open(db_url, clock=clock)
    yield store, clock  # type: ignore[misc]
    store.close()


def test_runs_newest_first_with_filters_reasons_and_keyset_pages(clocked: tuple[Store, Clock]) -> None:
    store, clock = clocked
    ids = seed(store, clock)
    views = Views(store)
    page = views.runs()
    assert [r.id for r in page.rows] == [ids["failed"], ids["partial"], ids["ok"]] and page.next is None
    failed, partial, ok = page.rows
    assert failed.reason == "connection 'kinetic': 401 Unauthorized" and failed.duration_s == 1.0
    assert partial.reason == "1 file(s) in error; 1 record(s) failed" and partial.duration_s == 75.0
    assert ok.reason == "" and ok.created == 2 and ok.records == 2 and ok.files == 1

    assert [r.id for r in views.runs(flow="vendors-in").rows] == [ids["failed"], ids["ok"]]
    assert [r.id for r in views.runs(outcome="partial").rows] == [ids["partial"]]
    assert [r.id for r in views.runs(since=T0 + timedelta(minutes=30)).rows] == [ids["failed"], ids["partial"]]
    assert [r.id for r in views.runs(until=T0 + timedelta(minutes=30)).rows] == [ids["ok"]]

    first = views.runs(limit=2)
    assert len(first.rows) == 2 and first.next is not None
    second = views.runs(limit=2, after=first.next)
    assert [r.id for r in second.rows] == [ids["ok"]] and second.next is None
    with pytest.raises(UsageError):
        views.runs(after="not a cursor")


def test_short_run_ids_resolve_and_ambiguity_is_refused(clocked: tuple[Store, Clock]) -> None:
    store, clock = clocked
    ids = seed(store, clock)
    views = Views(store)
    assert views.resolve_run(ids["partial"][:8]).id == ids["partial"]
    assert views.resolve_run(ids["partial"].upper()).id == ids["partial"]
    with pytest.raises(NotFoundError):
        views.resolve_run("ffffffff-none")
    with pytest.raises(UsageError, match="at least 4"):
        views.resolve_run("ab")
    # Two runs sharing a prefix: the short form must say it is ambiguous, not pick one.
    with store.session() as s, s.begin():
        from ml_connector.store import models as m

        for suffix in ("1", "2"):
            s.add(m.Run(id=f"abcd000{suffix}", flow="x", direction="inbound", trigger="cli", state="succeeded",
                        started_at=T0, counts={}))  # fmt: skip
    with pytest.raises(UsageError, match="ambiguous"):
        views.resolve_run("abcd")


def test_run_detail_file_detail_records_and_search(clocked: tuple[Store, Clock]) -> None:
    store, clock = clocked
    ids = seed(store, clock)
    views = Views(store)
    detail = views.run_detail(ids["partial"][:6])
    assert [f.name for f in detail.files] == ["inv.csv"]
    (records,) = detail.records.values()
    assert [r.state for r in records] == ["posted", "failed"]
    events = views.run_detail(ids["failed"]).events
    assert [e.kind for e in events.rows] == ["run.start", "epicor.call"]

    (inv,) = store.ledger.files(flow="invoices-in")
    fd = views.file_detail(inv.id)
    assert fd.record_states == {"posted": 1, "failed": 1}
    assert fd.problems == [{"where": "inv.csv: line 3", "message": "line 3: unknown vendor V009"}]
    page = views.records_by_file(inv.id, limit=1)
    assert [r.idx for r in page.rows] == [0] and page.next == "0"
    assert [r.idx for r in views.records_by_file(inv.id, after=int(page.next), limit=1).rows] == [1]
    with pytest.raises(NotFoundError):
        views.file_detail(999_999)

    assert [h.file.name for h in views.search("inv.csv")] == ["inv.csv"]
    assert {h.file.name for h in views.search("V001")} == {"good.csv", "inv.csv"}  # vendor id, and invoice's vendor
    assert [(h.file.name, h.matched) for h in views.search("INV-8")] == [("inv.csv", "record V009/INV-8")]
    assert views.search("nothing-like-this") == [] and views.search("  ") == []
    assert views.search("100%_") == []  # LIKE wildcards are literal


def test_isa13_search_and_control_numbers(clocked: tuple[Store, Clock]) -> None:
    store, _clock = clocked
    run = store.ledger.start_run("remit-out", "outbound", "cli")
    fid = store.ledger.record_intent(flow="remit-out", run_id=run, remote_path="/out/r.820", local_path="/x",
                                     sha256="c" * 64, size=5,
                                     details={"x12": {"isa13": "000000042", "gs06": "42", "sets": ["0001"],
                                                      "partner": "ZZ:US>ZZ:THEM"}})  # fmt: skip
    store.ledger.update_file(fid, state="delivered", details={"ack": "rejected", "ack_kind": "997", "ack_codes": ["5"]})
    store.ledger.add_interchange(direction="outbound", sender="ZZ:US", receiver="ZZ:THEM", control_number="000000042",
                                 file_id=fid, groups={"42": {"sets": ["0001"]}}, state="rejected")  # fmt: skip
    views = Views(store)
    (hit,) = views.search("42")
    assert hit.file.id == fid and hit.matched == "ISA13 000000042"
    fd = views.file_detail(fid)
    assert fd.control_numbers == {"ISA13": "000000042", "GS06": "42", "ST02": "0001"}
    assert fd.partner_ack == {"state": "rejected", "kind": "997", "codes": ["5"]}
    # A second file still waiting for its 997: overdue after alerts.ack_timeout_minutes (4 h), not before.
    fid2 = store.ledger.record_intent(flow="remit-out", run_id=run, remote_path="/out/r2.820", local_path="/x",
                                      sha256="9" * 64, size=5, details={})  # fmt: skip
    store.ledger.add_interchange(direction="outbound", sender="ZZ:US", receiver="ZZ:THEM", control_number="000000043",
                                 file_id=fid2, groups={"43": {}}, state="sent")  # fmt: skip
    (soon,) = views.flow_health(["remit-out"], now=T0 + timedelta(hours=2))
    (late,) = views.flow_health(["remit-out"], now=T0 + timedelta(days=2))
    assert (
        soon.counts.acks_overdue == 0 and late.counts.acks_overdue == 1 and late.health == "running"
    )  # its run never ended


def test_flow_health_counts_and_sparkline(clocked: tuple[Store, Clock]) -> None:
    store, clock = clocked
    seed(store, clock)
    views = Views(store)
    vend, inv, never = views.flow_health(["vendors-in", "invoices-in", "new-flow"], now=T0 + timedelta(hours=3))
    assert vend.health == "failing" and vend.last is not None and vend.last.run.state == "failed"
    assert inv.health == "attention" and inv.counts.records_failed == 1 and inv.counts.files_error == 1
    assert never.health == "never run" and never.last is None
    assert len(vend.days) == 14 and vend.days[-2:] == [("2026-11-30", 1, 2), ("2026-12-01", 1, 0)]  # UTC days
    assert sum(d[1] for d in never.days) == 0


def test_runs_command(cli: object, tmp_path: Path) -> None:
    run = cli  # type: ignore[assignment]
    assert run("init").exit_code == 0  # type: ignore[operator]
    home = run.home  # type: ignore[attr-defined]
    clock = Clock(T0)
    store = Store.open(f"sqlite:///{home / 'ml-connector.db'}", clock=clock)
    ids = seed(store, clock)
    store.close()
    res = run("runs")  # type: ignore[operator]
    assert res.exit_code == 0, res.output
    assert ids["partial"][:8] in res.stdout and "1 record(s) failed" in res.stdout and "1m15s" in res.stdout
    assert "401 Unauthorized" in res.stdout
    res = run("runs", "--flow", "invoices-in", "--json")  # type: ignore[operator]
    data = json.loads(res.stdout)
    assert [d["id"] for d in data] == [ids["partial"]] and data[0]["outcome"] == "partial"
    assert data[0]["counts"]["records_failed"] == 1 and data[0]["duration_s"] == 75.0
    res = run("runs", "--since", "2026-11-30T22:30", "--json")  # type: ignore[operator]
    assert [d["id"] for d in json.loads(res.stdout)] == [ids["failed"], ids["partial"]]
    res = run("runs", ids["partial"][:8])  # type: ignore[operator]
    assert res.exit_code == 0 and "inv.csv: error" in res.stdout and f"audit --run {ids['partial']}" in res.stdout
    res = run("runs", ids["partial"][:8], "--json")  # type: ignore[operator]
    assert json.loads(res.stdout)["files"][0]["remote_path"] == "/in/inv.csv"
    res = run("runs", "zzzzzzzz")  # type: ignore[operator]
    assert res.exit_code != 0 and "no run 'zzzzzzzz'" in res.stderr
    res = run("runs", "--since", "yesterday")  # type: ignore[operator]
    assert res.exit_code == 2 and "--since" in res.stderr
