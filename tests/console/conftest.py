"""A home with flows, ledger rows (some hostile), users, and the console app under TestClient."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ml_connector.connections import EpicorSettings, SftpSettings
from ml_connector.console.app import Console, create_app
from ml_connector.console.settings import ConsoleSettings
from ml_connector.home import Home
from ml_connector.secrets import Secret
from ml_connector.store import Store
from ml_connector.users import Users

from ..flows.conftest import embedded, env, loop_thread, sandbox, sqlite_env, sshd  # noqa: F401 - fixtures

PASSWORD = "correct horse battery"
CANARY = {
    "api_key": "CANARY-APIKEY-7f3a9c",
    "password": "CANARY-PASSWORD-51e2",
    "sftp_password": "CANARY-SFTPPW-88d0",
    "host": "canary-host-3b1.example",
    "user": "canary-user-e4f",
    "url": "https://canary-url-91c.example/EpicorERP",
}
HOSTILE_NAME = "<script>alert(1)</script>.csv"
HOSTILE_ATTR = '"><img src=x onerror=alert(1)>.csv'
HOSTILE_VENDOR = "<img src=x onerror=alert('v')>"
HOSTILE_ERROR = "line 2: Vendor '<script>alert(\"e\")</script>' is not valid"

FLOWS = """
flows:
  vendors-in:
    direction: inbound
    schedule: "*/15 * * * *"
    timezone: America/Chicago
    epicor: kinetic
    entity: vendors
    sftp: partner
    folder: /inbound
    format:
      type: csv
      columns:
        - {field: VendorID, header: Vendor}
        - {field: Name}
  vendors-out:
    direction: outbound
    epicor: kinetic
    entity: vendors
    sftp: partner
    folder: /outbound
    filename: "v_{run}.csv"
    format: {type: csv}
"""


@dataclass
class World:
    home: Home
    store: Store
    console: Console
    client: TestClient
    ids: dict[str, object]

    def login(self, name: str = "olivia", password: str = PASSWORD, client: TestClient | None = None) -> TestClient:
        c = client or self.client
        page = c.get("/login")
        token = csrf(page.text)
        r = c.post("/login", data={"name": name, "password": password, "csrf": token}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return c

    def fresh_client(self) -> TestClient:
        return TestClient(create_app(self.console), base_url="http://127.0.0.1")


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def nonce(html: str) -> str:
    """The one-shot confirmation nonce of a confirm page."""
    m = re.search(r'name="nonce" value="([^"]+)"', html)
    assert m, "no nonce in the page"
    return m.group(1)


def act(client: TestClient, action: str, target: str) -> str:
    """Open an action's confirmation and confirm it; the result page."""
    confirm = client.get(f"/actions/{action}?target={target}")
    assert confirm.status_code == 200, confirm.text
    r = client.post(f"/actions/{action}", data={"target": target, "nonce": nonce(confirm.text),
                                                 "csrf": csrf(confirm.text)})  # fmt: skip
    assert r.status_code == 200, r.text
    return r.text


def seed_ledger(store: Store) -> dict[str, object]:
    ledger = store.ledger
    ids: dict[str, object] = {}
    run = ledger.start_run("vendors-in", "inbound", "schedule")
    ids["run"] = run
    bad = ledger.see(flow="vendors-in", run_id=run, remote_path=f"/inbound/{HOSTILE_NAME}", size=30, mtime=1)[0]
    ledger.update_file(bad.id, state="error", sha256="d" * 64, error=f"{HOSTILE_NAME}: 1 of 2 records failed",
                       details={"problems": [{"where": f"{HOSTILE_NAME}: line 3", "message": HOSTILE_ERROR}]})  # fmt: skip
    ledger.add_records(bad.id, "d" * 64, [(0, "line 2", HOSTILE_VENDOR, "posted", None),
                                          (1, "line 3", "V2", "failed", HOSTILE_ERROR)])  # fmt: skip
    ledger.settle_records(bad.id, [(0, "posted", {"VendorNum": 77, "VendorID": HOSTILE_VENDOR}, None)])
    ids["bad"] = bad.id
    attr = ledger.see(flow="vendors-in", run_id=run, remote_path=f"/inbound/{HOSTILE_ATTR}", size=3, mtime=2)[0]
    ledger.update_file(attr.id, state="done", sha256="e" * 64)
    ids["attr"] = attr.id
    ledger.finish_run(run, "partial", {"records_posted": 1, "records_failed": 1, "files_error": 1})
    store.audit.record("record.failed", flow="vendors-in", run_id=run, subject=f"{HOSTILE_NAME}: line 3",
                       outcome="error", details={"error": HOSTILE_ERROR})  # fmt: skip
    out = ledger.start_run("vendors-out", "outbound", "cli")
    intent = ledger.record_intent(flow="vendors-out", run_id=out, remote_path="/outbound/v_1.csv", local_path="/nope",
                                  sha256="f" * 64, size=10, details={"folder": "/outbound", "name": "v_1.csv"})  # fmt: skip
    ids["intent"] = intent
    ledger.finish_run(out, "failed", {}, "SFTP upload failed: connection reset")
    # An error text that leaked a host and a user name (e.g. from a library's message).
    store.audit.record("connection.tested", subject="partner", outcome="error",
                       details={"error": f"cannot reach {CANARY['user']}@{CANARY['host']}:22"})  # fmt: skip
    return ids


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with small costs: the tests exercise the logic, not the KDF's price (see test_users)."""
    from argon2 import PasswordHasher

    import ml_connector.users

    monkeypatch.setattr(ml_connector.users, "PasswordHasher",
                        lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))  # fmt: skip


@pytest.fixture
def world(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.delenv("ML_CONNECTOR_MASTER_KEY", raising=False)
    home = Home.resolve(tmp_path / "home", database_url=db_url)
    home.init(environ={})
    home.flows_file.write_text(FLOWS)
    store = Store.open(db_url)
    keyring = home.keyring(environ={})
    store.connections.add("kinetic", EpicorSettings(url=CANARY["url"], company="EPIC06", username=CANARY["user"],
                                                    api_key=Secret(CANARY["api_key"]),
                                                    password=Secret(CANARY["password"])), keyring)  # fmt: skip
    store.connections.add("partner", SftpSettings(host=CANARY["host"], username=CANARY["user"],
                                                  password=Secret(CANARY["sftp_password"]),
                                                  host_keys=("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",)),
                          keyring)  # fmt: skip
    users = Users(store)
    users.add("olivia", "operator", PASSWORD)
    users.add("victor", "viewer", PASSWORD)
    ids = seed_ledger(store)
    console = Console(home, store, ConsoleSettings(enabled=True))
    with TestClient(create_app(console), base_url="http://127.0.0.1") as client:
        yield World(home, store, console, client, ids)
    store.close()
