"""The README's sandbox quickstart, run as written: every ```bash block of that section, in order,
in one shell, against the real `ml-connector` console script, the Kinetic sandbox over HTTP and
the embedded SFTP server. Only the two port numbers are swapped for free ones (other test
sessions may share this machine); a README edit that breaks a step fails this test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .sftp.sshd import free_port

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart_blocks(text: str) -> list[str]:
    """The ```bash blocks of the '## Quickstart on the sandbox' section, in order."""
    section = text.split("## Quickstart on the sandbox", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def test_the_quickstart_has_the_steps_a_new_user_needs() -> None:
    script = "\n".join(quickstart_blocks(README.read_text()))
    for step in (
        "ml-connector init",
        "ml-connector sandbox",
        "connections add-epicor",
        "connections add-sftp",
        "cat >> ~/.ml-connector/flows.yaml",
        "flows validate",
        "run vendors-to-partner",
        "files",
        "status",
    ):
        assert step in script, step


@pytest.mark.skipif(shutil.which("ssh-keyscan") is None, reason="needs ssh-keyscan (openssh-client)")
def test_the_readme_quickstart_runs_verbatim_against_the_sandbox(tmp_path: Path) -> None:
    kinetic_port, sftp_port = free_port(), free_port()
    script = "\n".join(quickstart_blocks(README.read_text()))
    script = script.replace("8470", str(kinetic_port)).replace("8471", str(sftp_port))
    home = tmp_path / "user"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CONNECTOR_")}
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", COLUMNS="200")
    wrapped = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script
    done = subprocess.run(["bash", "-c", wrapped], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240, check=False)  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "vendors-to-partner (outbound) succeeded" in out
    assert "1 flow(s) valid" in out and "matches the pin" in out and "authenticated to company EPIC06" in out
    sent = list((home / ".ml-connector" / "sandbox" / "sftp" / "outbound").glob("vendors_*.csv"))
    assert len(sent) == 1 and sent[0].read_text().startswith("VendorID,Name")
