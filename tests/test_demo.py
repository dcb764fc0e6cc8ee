"""``ml-connector demo``: the whole product on the sandbox, in a throwaway home, exit 0."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def test_demo_runs_every_job_end_to_end(cli: Any, tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    r = cli("demo", "--home", str(home))
    assert r.exit_code == 0, r.output
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


def test_demo_leaves_nothing_in_the_temp_folder_and_tests_both_connections(
    cli: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    temp = tmp_path / "system-temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    r = cli("demo")
    assert r.exit_code == 0, r.output
    assert list(temp.iterdir()) == []
    out = r.stdout
    assert "connections test kinetic-sandbox" in out and "connections test partner-sftp" in out
    assert "matches the pin" in out and "authenticated to company" in out
    assert "is removed now" in out


def test_demo_with_home_keeps_everything_inside_it(cli: Any, tmp_path: Path, monkeypatch: Any) -> None:
    temp = tmp_path / "system-temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    home = tmp_path / "kept"
    r = cli("demo", "--home", str(home))
    assert r.exit_code == 0, r.output
    assert list(temp.iterdir()) == []
    assert (home / "partner-sftp" / "error" / "vendors_broken.csv.error.json").is_file()
    assert "Where to look next" in r.stdout


def test_demo_help_says_what_it_does(cli: Any) -> None:
    r = cli("demo", "--help")
    assert r.exit_code == 0
    assert "end to end" in r.stdout and "sandbox" in r.stdout
    assert "what exists so far" not in r.stdout.lower()
