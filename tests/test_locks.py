"""Two real processes contend for one flow lock, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ml_connector.store import Store

WORKER = Path(__file__).with_name("lock_worker.py")


def test_two_processes_never_hold_one_flow_at_once(db_url: str, tmp_path: Path) -> None:
    Store.open(db_url).close()
    log = tmp_path / "sections.log"
    start = tmp_path / "go"
    rounds = 15
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), db_url, "flow-x", str(log), str(start), str(rounds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    start.touch()
    counts = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert counts == [rounds, rounds]
    lines = log.read_text().splitlines()
    assert len(lines) == 4 * rounds
    owners = set()
    for i in range(0, len(lines), 2):
        enter, leave = lines[i].split(), lines[i + 1].split()
        assert enter[0] == "enter" and leave[0] == "exit", lines[i : i + 2]
        assert enter[1] == leave[1], f"overlapping critical sections at line {i}"
        owners.add(enter[1])
    assert len(owners) == 2  # both processes really contended and both got in
