from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def test_demo_runs_and_leaves_a_consistent_home(cli: Any, tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    r = cli("demo", "--home", str(home))
    assert r.exit_code == 0, r.output
    assert "2 flow(s) valid" in r.stdout
    assert "re-encrypted 2 connection(s)" in r.stdout
    with sqlite3.connect(home / "ml-connector.db") as db:
        names = [n for (n,) in db.execute("select name from connections order by name")]
        kinds = [k for (k,) in db.execute("select kind from audit_events order by id")]
    assert names == ["kinetic-sandbox", "partner-sftp"]
    assert kinds == ["home.init", "connection.added", "connection.added", "keys.rotated"]
