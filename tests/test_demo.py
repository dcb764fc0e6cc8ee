"""``ml-connector demo``: the whole product on the sandbox, in a throwaway home, exit 0."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any


def test_demo_runs_every_job_end_to_end(cli: Any, tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    started = time.monotonic()
    r = cli("demo", "--home", str(home))
    elapsed = time.monotonic() - started
    assert r.exit_code == 0, r.output
    assert elapsed < 60
    out = r.stdout
    assert "8 flow(s) valid" in out and "Summary" in out
    with sqlite3.connect(home / "ml-connector.db") as db:
        files = dict(db.execute("select remote_path, state from files"))
        names = [n for (n,) in db.execute("select name from connections order by name")]
        acks = [d for (d,) in db.execute("select details from files where direction = 'outbound'") if "accepted" in d]
        posted = db.execute("select count(*) from records where state = 'posted'").fetchone()[0]
    assert names == ["kinetic-sandbox", "partner-sftp"]
    states = {p.rsplit("/", 1)[-1]: s for p, s in files.items()}
    assert states["vendors_broken.csv"] == "error"
    assert {states[n] for n in ("vendors_2026-11-23.csv", "vendors_fixed.txt", "invoices_confirmed.csv",
                                "remit_customer2.820", "bank_ack.997")} == {"done"}  # fmt: skip
    assert sum(1 for s in files.values() if s == "delivered") == 3
    assert len(acks) == 1 and posted >= 9
    assert "line 3" in out and ".997" in out
    assert "console --actions" in out and "log in as demo / " in out  # issue 16
