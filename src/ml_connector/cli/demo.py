"""``ml-connector demo``: the whole product, end to end, on the sandbox, in about half a minute.

In a throwaway home (or ``--home``): start the Kinetic sandbox (seed data) and the embedded SFTP
server on loopback ports, create the two connections the way a user would (secrets from
environment variables, a pinned host key), write sample flows for jobs O1-O3 and I1-I4 of
DESIGN.md, drop partner files on the SFTP server (a vendor CSV, a fixed-width vendor file, an
invoice confirmation CSV, an 820 payment advice, and one malformed file), run every flow with
progress bars, and end with a summary of what happened and where to look next.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import shutil
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path

import asyncssh
import uvicorn
from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from ..sandbox.kinetic import KineticSandbox, SandboxOptions
from ..sandbox.loop import LoopThread
from ..sandbox.partners import bank_997, partner_files
from ..sandbox.sftp_server import EmbeddedSftpServer, SftpUser
from ..states import FileState, RecordState

DEMO_FLOWS = """\
# Sample flows for the demo: every job of DESIGN.md section 1 against the sandbox.
flows:
  vendors-to-partner:            # O1: changed vendors -> CSV
    direction: outbound
    schedule: "0 19 * * 1-5"
    timezone: America/Chicago
    epicor: kinetic-sandbox
    entity: vendors
    sftp: partner-sftp
    folder: /outbound
    filename: "vendors_{now:%Y%m%d_%H%M%S}.csv"
    format: {type: csv}
  invoices-to-partner:           # O2: changed AP invoices -> CSV, every evening
    direction: outbound
    schedule: "30 19 * * 1-5"
    timezone: America/Chicago
    epicor: kinetic-sandbox
    entity: ap-invoices
    filter: "Posted eq true"
    sftp: partner-sftp
    folder: /outbound
    filename: "invoices_{now:%Y%m%d}_{seq}.csv"
    format:
      type: csv
      overrides:
        InvoiceAmt: {header: Amount}
  payments-to-bank:              # O3: AP payments -> X12 820 remittance advice
    direction: outbound
    schedule: "0 20 * * 1-5"
    timezone: America/Chicago
    epicor: kinetic-sandbox
    entity: ap-payments
    sftp: partner-sftp
    folder: /outbound
    filename: "remit_{now:%Y%m%d}_{run}.820"
    constants: {payer_name: "Epicor Demo Co", payer_id: "EPIC06", method: CHK}
    format:
      type: x12
      partner: {sender_id: EPICDEMO, receiver_id: BANK01}
  vendors-from-partner:          # I1: vendor CSV -> create or update vendors
    direction: inbound
    schedule: "*/15 * * * *"
    epicor: kinetic-sandbox
    entity: vendors
    sftp: partner-sftp
    folder: /inbound
    pattern: "vendors*.csv"
    archive_folder: /archive
    error_folder: /error
    settle_seconds: 0
    format: {type: csv}
  vendors-fixed-width:           # I1: the same from a fixed-width file
    direction: inbound
    schedule: "*/15 * * * *"
    epicor: kinetic-sandbox
    entity: vendors
    sftp: partner-sftp
    folder: /inbound
    pattern: "*.txt"
    archive_folder: /archive
    error_folder: /error
    settle_seconds: 0
    format: {type: fixed-width}
  invoice-confirmations:         # I3: invoice confirmations CSV -> AP invoices
    direction: inbound
    schedule: "*/15 * * * *"
    epicor: kinetic-sandbox
    entity: ap-invoices
    sftp: partner-sftp
    folder: /inbound
    pattern: "invoices*.csv"
    archive_folder: /archive
    error_folder: /error
    settle_seconds: 0
    constants: {GroupID: SEED01}
    format: {type: csv}
  remittance-in:                 # I2: 820 payment advice -> cash receipts + a 997
    direction: inbound
    schedule: "*/15 * * * *"
    epicor: kinetic-sandbox
    entity: cash-receipts
    sftp: partner-sftp
    folder: /inbound
    pattern: "*.820"
    archive_folder: /archive
    error_folder: /error
    ack_folder: /acks
    settle_seconds: 0
    constants: {GroupID: CASH01}
    format: {type: x12, set: "820"}
  bank-acks-in:                  # I4: the bank's 997 for our 820 -> file marked accepted
    direction: inbound
    schedule: "*/15 * * * *"
    epicor: kinetic-sandbox
    entity: acknowledgments
    sftp: partner-sftp
    folder: /inbound
    pattern: "*.997"
    archive_folder: /archive
    settle_seconds: 0
    format: {type: x12, set: "997"}
"""

OUTBOUND = ("vendors-to-partner", "invoices-to-partner", "payments-to-bank")
INBOUND = ("vendors-from-partner", "vendors-fixed-width", "invoice-confirmations", "remittance-in")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_demo(home: Path | None, console: Console) -> int:
    from . import main

    started = time.monotonic()
    keep = home is not None
    # Everything (database, key, staging, the SFTP server's folders) lives inside the home; a
    # home the user did not name is removed at the end, so the temp folder keeps nothing.
    home = home.resolve() if home is not None else Path(tempfile.mkdtemp(prefix="ml-connector-demo-"))
    base = ["--home", str(home)]
    api_key, password = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
    os.environ["DEMO_KINETIC_API_KEY"] = api_key
    os.environ["DEMO_KINETIC_PASSWORD"] = password
    sandbox = KineticSandbox(SandboxOptions(instance="EpicorDemo", api_key=api_key, users={"manager": password}))
    sandbox.seed()
    sandbox.generate_payments(3, vendor_num=2)
    sftp_root = home / "partner-sftp"
    for sub in ("inbound", "outbound", "archive", "error", "acks"):
        (sftp_root / sub).mkdir(parents=True, exist_ok=True)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    sftp = EmbeddedSftpServer(
        sftp_root, {"partner": SftpUser(public_keys=[client_key.export_public_key().decode()])}, port=_free_port()
    )
    background = LoopThread()
    kinetic_port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(sandbox.app, host="127.0.0.1", port=kinetic_port, log_level="warning", lifespan="off")
    )
    codes: dict[str, int] = {}

    def step(title: str, *args: str, expect: tuple[int, ...] = (0,)) -> int:
        console.print(Rule(title))
        console.print(f"$ ml-connector {shlex.join(args)}", style="bold cyan")
        try:
            main([*base, *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        if code not in expect:
            raise SystemExit(code)
        return code

    try:
        background.run(sftp.start())
        serving = asyncio.run_coroutine_threadsafe(server.serve(), background.loop)
        deadline = time.monotonic() + 15
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        console.print(
            f"Kinetic sandbox on http://127.0.0.1:{kinetic_port}/EpicorDemo (company EPIC06, seeded), "
            f"SFTP sandbox on 127.0.0.1:{sftp.port} (host key {sftp.fingerprint})",
            highlight=False,
        )

        step("1. Set up the home folder", "init")
        key_path = home / "demo_client_ed25519"
        client_key.write_private_key(str(key_path))
        key_path.chmod(0o600)
        (home / "flows.yaml").write_text(DEMO_FLOWS, encoding="utf-8")
        step(
            "2. A Kinetic connection: API key and password from environment variables, token auth",
            "connections",
            "add-epicor",
            "kinetic-sandbox",
            "--url",
            f"http://127.0.0.1:{kinetic_port}/EpicorDemo",
            "--company",
            "EPIC06",
            "--username",
            "manager",
            "--auth",
            "token",
            "--api-key-env",
            "DEMO_KINETIC_API_KEY",
            "--password-env",
            "DEMO_KINETIC_PASSWORD",
        )
        step(
            "3. An SFTP connection: a private key and a pinned host key",
            "connections",
            "add-sftp",
            "partner-sftp",
            "--host",
            "127.0.0.1",
            "--port",
            str(sftp.port),
            "--username",
            "partner",
            "--key-file",
            str(key_path),
            "--host-key",
            sftp.host_key_line,
        )
        step("4. Both connections work: Kinetic", "connections", "test", "kinetic-sandbox")
        step("   and SFTP (host key pin, and every folder the flows use)", "connections", "test", "partner-sftp")
        step("5. The flows (O1-O3 outbound, I1-I4 inbound) are valid", "flows", "validate")

        partner_files(sftp_root)
        console.print(Rule("6. The partner dropped files on the SFTP server"))
        for p in sorted((sftp_root / "inbound").iterdir()):
            console.print(f"  /inbound/{p.name}  ({p.stat().st_size} bytes)", highlight=False)
        for n, flow in enumerate(OUTBOUND, start=7):
            codes[flow] = step(f"{n}. Outbound: {flow}", "run", flow)
        for n, flow in enumerate(INBOUND, start=7 + len(OUTBOUND)):
            codes[flow] = step(f"{n}. Inbound: {flow}", "run", flow, expect=(0, 1))
        ack = bank_997(sftp_root)
        console.print(Rule(f"{7 + len(OUTBOUND) + len(INBOUND)}. The bank answered our 820 with a 997 ({ack})"))
        codes["bank-acks-in"] = step("   Inbound: bank-acks-in", "run", "bank-acks-in")
        step("Every file in the ledger", "files")
        _summary(console, home, sandbox, sftp_root, codes, time.monotonic() - started, keep)
    finally:
        server.should_exit = True
        try:
            if "serving" in locals():
                serving.result(timeout=15)
            background.run(sftp.stop())
        finally:
            background.stop()
            if not keep:
                shutil.rmtree(home, ignore_errors=True)
    return 0


def _summary(console: Console, home: Path, sandbox: KineticSandbox, sftp_root: Path, codes: dict[str, int],
             elapsed: float, keep: bool) -> None:  # fmt: skip
    from ..store import Store

    with Store.open(f"sqlite:///{home / 'ml-connector.db'}") as store:
        files = store.ledger.files()
        events = Counter(e.kind.split(".")[0] for e in store.audit.query(limit=None))
        posted = [r for f in files for r in store.ledger.records(f.id, [RecordState.POSTED.value])]
        created = sum(1 for r in posted if r.erp_keys.get("created"))
        updated = sum(1 for r in posted if r.erp_keys.get("created") is False)
        errors = [f for f in files if f.state == FileState.ERROR]
        acked = [f for f in files if f.details.get("ack") == "accepted"]
    console.print(Rule("Summary"))
    t = Table("what", "how many", "details", title=f"demo finished in {elapsed:.1f} s", title_justify="left")
    sent = [f for f in files if f.direction == "outbound" and f.state == FileState.DELIVERED]
    received = [f for f in files if f.direction == "inbound"]
    t.add_row("files sent to the partner", str(len(sent)), ", ".join(f.name for f in sent))
    t.add_row("files received", str(len(received)), ", ".join(f"{f.name}: {f.state}" for f in received))
    t.add_row("records created in Kinetic", str(created), "vendors, AP invoices, cash receipts")
    t.add_row("records updated in Kinetic", str(updated), "existing vendors matched by VendorID")
    acks = sorted(p.name for p in (sftp_root / "acks").iterdir())
    t.add_row("997s written to /acks", str(len([a for a in acks if a.endswith(".997")])), ", ".join(acks))
    t.add_row("our 820s accepted by the bank", str(len(acked)), ", ".join(f.name for f in acked))
    for f in errors:
        t.add_row("[red]in the error folder[/]", "1", f.error or f.name)
    t.add_row("audit events", str(sum(events.values())), ", ".join(f"{k} {v}" for k, v in events.most_common()))
    console.print(t)
    console.print(
        f"Kinetic sandbox now holds {sandbox.row_count('Vendor')} vendors, {sandbox.row_count('APInvHed')} AP "
        f"invoices and {sandbox.row_count('CashHead')} cash receipts.",
        highlight=False,
    )
    if not keep:
        console.print(
            "The demo home (a temporary folder) is removed now; 'ml-connector demo --home DIR' keeps everything in DIR "
            "to look at afterwards, with the commands to try and a login for the operator console.",
            highlight=False,
        )
        return
    h = shlex.quote(str(home))
    console.print("Where to look next:", highlight=False)
    console.print(f"  ml-connector --home {h} files --state error       the file ledger", highlight=False)
    console.print(f"  ml-connector --home {h} audit --flow remittance-in every call and transfer", highlight=False)
    console.print(f"  ml-connector --home {h} status --no-remote       each flow at a glance", highlight=False)
    console.print(f"  {sftp_root}/error/*.error.json                  why a file was rejected", highlight=False)
    console.print(f"  {home}/flows.yaml                               the sample flows", highlight=False)
    from ..console.demo import demo_login  # issue 16: the console's URL and a login for this home

    for line in demo_login(home):
        console.print(line, highlight=False, markup=False)
