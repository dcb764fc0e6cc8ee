"""``ml-connector demo``: a guided run through what the product does, in a throwaway home.

This version exercises the foundation (home, encrypted connections, flows.yaml, key rotation,
audit trail). The sandbox-backed end-to-end demo replaces it when the flows land.
"""

from __future__ import annotations

import os
import secrets
import shlex
import tempfile
from pathlib import Path

import asyncssh
from rich.console import Console
from rich.rule import Rule

DEMO_FLOWS = """\
flows:
  vendors-to-partner:
    direction: outbound
    schedule: "0 19 * * 1-5"
    timezone: America/Chicago
    epicor: kinetic-sandbox
    entity: vendors
    sftp: partner-sftp
    folder: /outbound
    filename: "vendors_{now:%Y%m%d_%H%M%S}.csv"
    format:
      type: csv
      columns:
        - {header: VendorID, field: VendorID}
        - {header: Name, field: Name}
        - {header: TermsCode, field: TermsCode}
  remittance-in:
    direction: inbound
    schedule: "*/15 * * * *"
    sftp: partner-sftp
    folder: /inbound
    pattern: "*.820"
    archive_folder: /archive
    error_folder: /error
    ack_folder: /acks
    epicor: kinetic-sandbox
    entity: cash-receipts
    constants: {GroupID: CASH01}
    format: {type: x12, set: "820"}
"""


def run_demo(home: Path | None, console: Console) -> int:
    from . import main

    home = home or Path(tempfile.mkdtemp(prefix="ml-connector-demo-"))
    base = ["--home", str(home)]
    # Demo credentials are generated here and handed over by environment variable name, as a
    # user would: never on the command line.
    os.environ["DEMO_KINETIC_API_KEY"] = secrets.token_urlsafe(24)
    os.environ["DEMO_KINETIC_PASSWORD"] = secrets.token_urlsafe(16)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = home / "demo_client_ed25519"

    def step(title: str, *args: str) -> None:
        console.print(Rule(title))
        console.print(f"$ ml-connector {shlex.join(args)}", style="bold cyan")
        try:
            main([*base, *args])
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise

    step("1. Set up the home folder", "init")
    client_key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    (home / "flows.yaml").write_text(DEMO_FLOWS, encoding="utf-8")
    pub = host_key.export_public_key().decode().strip()
    step(
        "2. Add an Epicor Kinetic connection (secrets from environment variables)",
        "connections", "add-epicor", "kinetic-sandbox",
        "--url", "http://127.0.0.1:8470/EpicorDemo", "--company", "EPIC06",
        "--username", "manager", "--auth", "token",
        "--api-key-env", "DEMO_KINETIC_API_KEY", "--password-env", "DEMO_KINETIC_PASSWORD",
    )  # fmt: skip
    step(
        "3. Add an SFTP connection with a private key and a pinned host key",
        "connections", "add-sftp", "partner-sftp", "--host", "127.0.0.1", "--port", "8471",
        "--username", "partner", "--key-file", str(key_path), "--host-key", pub,
    )  # fmt: skip
    step("4. Connections are listed without secrets", "connections", "list")
    step("5. Settings are shown without credentials", "connections", "show", "partner-sftp")
    step("6. Flows are validated against their connections", "flows", "validate")
    step("7. Flows", "flows", "list")
    step("8. Rotate the master key: every row re-encrypted, old key retired", "keys", "rotate")
    step("9. The audit trail", "audit")
    console.print(Rule("Done"))
    console.print(f"Home folder: {home}  (database, master.key, staging/, flows.yaml)")
    console.print("Next: ml-connector --home " + shlex.quote(str(home)) + " audit --json")
    return 0
