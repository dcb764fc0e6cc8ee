"""The product's packages do not load the emulators, and flows read time only from their clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ml_connector


def test_sftp_package_does_not_load_the_embedded_server() -> None:
    code = "import sys, ml_connector.sftp, ml_connector.flows; print(sorted(m for m in sys.modules if 'sandbox' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_wall_clock_in_flows() -> None:
    flows = Path(ml_connector.__file__).parent / "flows"
    offenders = [p.name for p in flows.glob("*.py") if p.name != "ports.py" and "datetime.now(" in p.read_text()]
    assert offenders == []
