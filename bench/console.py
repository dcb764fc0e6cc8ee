"""Console pages at scale: server time per page with 100k runs and 1M record rows (SQLite).

    .venv/bin/python bench/console.py                      # 100k runs, 1M records, 15 samples a page
    .venv/bin/python bench/console.py --runs 20000 --records-per-file 10 --samples 9

Seeds a home's SQLite database by bulk insert (runs over a year across 10 flows, one file per run,
10 records per file, 1% failed records, 2% files in error, X12 interchanges for the outbound
files, 3 audit events per run), then requests each page in-process through Starlette's
TestClient (routing, session check, the store's read API, Jinja2 rendering: everything but the
socket) and prints the median and worst time per page. Target: every median < 200 ms. The
login page (no ledger query) is measured in the same run as the reference floor.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert
from starlette.testclient import TestClient

from ml_connector.console.app import Console, create_app
from ml_connector.console.settings import ConsoleSettings
from ml_connector.home import Home
from ml_connector.store import Store
from ml_connector.store import models as m
from ml_connector.users import Users

FLOWS = 10
PASSWORD = "bench password 1"  # noqa: S105 - a throwaway user in a temporary home


def flows_yaml() -> str:
    lines = ["flows:"]
    for i in range(FLOWS):
        lines += [f"  flow-{i}:", f"    direction: {'inbound' if i % 2 else 'outbound'}", "    epicor: kinetic",
                  "    entity: vendors", "    sftp: sftp", f"    folder: /f{i}", "    schedule: '*/15 * * * *'",
                  "    timezone: America/Chicago", "    format: {type: csv}"]  # fmt: skip
        if i % 2 == 0:
            lines.append("    filename: 'v_{run}.csv'")
    return "\n".join(lines) + "\n"


def seed(store: Store, runs: int, per_file: int) -> dict[str, Any]:
    rnd = random.Random(7)
    now = datetime.now(UTC)
    start = now - timedelta(days=365)
    step = (now - start) / runs
    facts: dict[str, Any] = {}
    run_rows, file_rows, rec_rows, ic_rows, audit_rows = [], [], [], [], []
    t0 = time.perf_counter()

    def flush(final: bool = False) -> None:
        with store.session() as s, s.begin():
            for table, rows in ((m.Run, run_rows), (m.FileEntry, file_rows), (m.RecordEntry, rec_rows),
                                (m.X12Interchange, ic_rows), (m.AuditEvent, audit_rows)):  # fmt: skip
                if rows:
                    s.execute(insert(table), rows)
                    rows.clear()

    rec_id = 0
    for n in range(runs):
        flow = n % FLOWS
        outbound = flow % 2 == 0
        started = start + step * n
        run_id = str(uuid.UUID(int=rnd.getrandbits(128)))
        error_file = rnd.random() < 0.02
        failed = [i for i in range(per_file) if rnd.random() < 0.01]
        state = "partial" if (failed or error_file) else ("failed" if rnd.random() < 0.01 else "succeeded")
        counts = {"records_posted": per_file - len(failed), "records_failed": len(failed),
                  "records_created": per_file // 2, "records_updated": per_file - per_file // 2 - len(failed),
                  "files_done": 0 if error_file else 1, "files_error": 1 if error_file else 0}  # fmt: skip
        if outbound:
            counts = {"records": per_file, "files": 1}
        run_rows.append(dict(id=run_id, flow=f"flow-{flow}", direction="outbound" if outbound else "inbound",
                             trigger="schedule", state=state, started_at=started,
                             finished_at=started + timedelta(seconds=rnd.uniform(1, 90)), counts=counts,
                             error="connection reset" if state == "failed" else None))  # fmt: skip
        file_id = n + 1
        name = f"{'v' if outbound else 'vendors'}_{n:07d}.{'820' if outbound and flow == 0 else 'csv'}"
        fstate = "delivered" if outbound else ("error" if error_file or failed else "done")
        file_rows.append(dict(id=file_id, flow=f"flow-{flow}", direction="outbound" if outbound else "inbound",
                              remote_path=f"/f{flow}/{name}", size=1000 + n % 5000, mtime=n, sha256=f"{n:064x}",
                              state=fstate, local_path=None, run_id=run_id,
                              error=f"{name}: {len(failed)} of {per_file} records failed" if fstate == "error" else None,
                              details={"records": per_file}, created_at=started, updated_at=started))  # fmt: skip
        if outbound and flow == 0:
            ic_rows.append(dict(direction="outbound", sender="ZZ:US", receiver="ZZ:THEM", control_number=f"{n:09d}",
                                file_id=file_id, groups={str(n): {"sets": ["0001"]}},
                                state="sent" if rnd.random() < 0.05 else "accepted", created_at=started,
                                updated_at=started))  # fmt: skip
        for i in range(per_file):
            rec_id += 1
            vendor = f"V{(n * per_file + i) % 50000:05d}"
            rec_rows.append(dict(id=rec_id, file_id=file_id, idx=i, idempotency_key=f"{n:032x}:{file_id}:{i}",
                                 position=f"line {i + 2}", natural_key=f"{vendor}/INV-{n}-{i}",
                                 state="failed" if i in failed else "posted",
                                 erp_keys={} if i in failed else {"VendorNum": rec_id, "InvoiceNum": f"INV-{n}-{i}"},
                                 error=f"line {i + 2}: unknown vendor {vendor}" if i in failed else None,
                                 attempts=1, updated_at=started))  # fmt: skip
        for k, kind in enumerate(("run.start", "file.done", "run.end")):
            audit_rows.append(dict(at=started + timedelta(seconds=k), run_id=run_id, flow=f"flow-{flow}", kind=kind,
                                   subject=name, outcome="ok", duration_ms=None, details={}))  # fmt: skip
        if n == runs // 2:
            facts.update(run=run_id, file=file_id, name=name, vendor=vendor, invoice=f"INV-{n}-3")
        if outbound and flow == 0 and n > runs // 3 and "isa13" not in facts:
            facts["isa13"] = str(n)
        if len(rec_rows) >= 50_000:
            flush()
    flush(final=True)
    facts["seed_s"] = time.perf_counter() - t0
    return facts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--records-per-file", type=int, default=10)
    ap.add_argument("--samples", type=int, default=15)
    ap.add_argument("--keep", type=Path, help="seed into this folder once and reuse it on later runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlc-bench-console-") as tmp:
        home = Home.resolve((args.keep or Path(tmp)) / "home")
        reuse = (home.path / "facts.json").exists()
        home.init(environ={})
        home.flows_file.write_text(flows_yaml())
        store = Store.open(home.database_url)
        if reuse:
            facts = json.loads((home.path / "facts.json").read_text())
            print(f"reusing the seeded database in {home.path}", flush=True)
        else:
            print(f"seeding {args.runs:,} runs, {args.runs * args.records_per_file:,} records (SQLite) ...", flush=True)
            facts = seed(store, args.runs, args.records_per_file)
            print(f"seeded in {facts['seed_s']:.0f} s", flush=True)
            Users(store).add("bench", "operator", PASSWORD)
            (home.path / "facts.json").write_text(json.dumps(facts))
        client = TestClient(
            create_app(Console(home, store, ConsoleSettings(enabled=True))), base_url="http://127.0.0.1"
        )
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
        client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf": token})
        deep = client.get("/runs")
        cursor = re.search(r'href="(/runs\?[^"]*after=[^"]+)"', deep.text)
        pages = [
            ("login page (reference)", "/login"),
            ("overview (10 flows)", "/"),
            ("runs", "/runs"),
            ("runs, next page", cursor.group(1).replace("&amp;", "&") if cursor else "/runs"),
            ("runs ?flow", "/runs?flow=flow-3"),
            ("runs ?outcome=failed", "/runs?outcome=failed"),
            ("runs ?flow&outcome&since", "/runs?flow=flow-3&outcome=partial&since=30d"),
            ("run page", f"/runs/{facts['run']}"),
            ("run page, short id", f"/runs/{facts['run'][:8]}"),
            ("files", "/files"),
            ("files ?state=error", "/files?state=error"),
            ("files ?flow&direction", "/files?flow=flow-4&direction=outbound"),
            ("file page", f"/files/{facts['file']}"),
            ("file page, records after", f"/files/{facts['file']}?after=4"),
            ("search: file name", f"/search?q={facts['name']}"),
            ("search: vendor id", f"/search?q={facts['vendor']}"),
            ("search: invoice number", f"/search?q={facts['invoice']}"),
            ("search: ISA13", f"/search?q={facts.get('isa13', '1')}"),
            ("connections", "/connections"),
        ]
        rows = []
        for label, path in pages:
            times = []
            for _ in range(args.samples):
                t = time.perf_counter()
                r = client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {r.status_code}: {r.text[:300]}")
            rows.append((label, statistics.median(times), max(times)))
        store.close()
    ref = rows[0][1]
    print(f"\n{'page':34} {'median ms':>10} {'max ms':>8} {'x login':>8}  target < 200 ms")
    for label, med, worst in rows:
        print(f"{label:34} {med:10.1f} {worst:8.1f} {med / ref:8.1f}  {'ok' if med < 200 else 'OVER'}")
    over = [label for label, med, _ in rows if med >= 200]
    print("\nall pages under 200 ms (median)" if not over else f"\nover target: {', '.join(over)}")


if __name__ == "__main__":
    main()
