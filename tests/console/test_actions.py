"""Console actions against the real thing: Kinetic sandbox over HTTP, OpenSSH sshd, the ledger."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from ml_connector.console.app import Console, create_app
from ml_connector.console.server import with_console
from ml_connector.console.settings import ConsoleSettings
from ml_connector.metrics import Metrics
from ml_connector.users import Users

from ..flows.conftest import Env, sha256
from .conftest import PASSWORD, act, csrf

FLOWS = """
vendors-out:
  direction: outbound
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/outbound"
  filename: "v_{run}.csv"
  format: {type: csv}
"""


def _login(client: TestClient) -> None:
    token = csrf(client.get("/login").text)
    assert client.post("/login", data={"name": "olivia", "password": PASSWORD, "csrf": token}).status_code == 200


def _act(client: TestClient, action: str, target: str) -> str:
    return re.search(r'id="result">([^<]*)<', act(client, action, target)).group(1)  # type: ignore[union-attr]


def test_run_now_resend_and_test_connections_from_the_console(sqlite_env: Env) -> None:
    env = sqlite_env
    env.flows(FLOWS)
    Users(env.store).add("olivia", "operator", PASSWORD)
    # Served the way `serve` serves it: mounted beside /metrics on one port.
    app, options = with_console(Metrics().app(), env.home, env.store, ConsoleSettings(enabled=True), "127.0.0.1")
    assert options == {"proxy_headers": False}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/metrics").status_code == 200 and client.get("/healthz").json()["status"] == "ok"
        assert client.get("/", follow_redirects=False).status_code == 303
        _login(client)

        said = _act(client, "test", "kinetic")
        assert "authenticated to company" in said, said
        said = _act(client, "test", "sftp")
        assert "matches the pin" in said, said
        page = client.get("/connections").text
        assert page.count("badge ok") == 2 and "127.0.0.1" not in page

        said = _act(client, "run", "vendors-out")
        assert "vendors-out: succeeded" in said, said
        (run,) = env.store.ledger.runs("vendors-out")
        assert run.trigger == "console"
        (f,) = env.store.ledger.files(flow="vendors-out")
        (name,) = env.names("outbound")
        digest = sha256(env.local("outbound") / name)
        (env.local("outbound") / name).unlink()  # the partner lost it
        said = _act(client, "resend", str(f.id))
        assert "succeeded" in said, said
        assert env.names("outbound") == [name] and sha256(env.local("outbound") / name) == digest
        said = _act(client, "abandon", str(f.id))
        assert "only a pending intent" in said
        actions = env.store.audit.query(kind="console.action", limit=None)
        assert [(e.details["action"], e.outcome) for e in actions] == [
            ("test", "ok"), ("test", "ok"), ("run", "ok"), ("resend", "ok"), ("abandon", "error")]  # fmt: skip
        assert all(e.details["user"] == "olivia" for e in actions)


def test_a_connection_test_failure_is_shown_without_the_host(sqlite_env: Env) -> None:
    env = sqlite_env
    env.flows(FLOWS)
    Users(env.store).add("olivia", "operator", PASSWORD)
    env.kinetic.sandbox.options.api_key = "rotated-elsewhere"  # the stored key no longer works
    with TestClient(
        create_app(Console(env.home, env.store, ConsoleSettings(enabled=True))), base_url="http://127.0.0.1"
    ) as client:
        _login(client)
        said = _act(client, "test", "kinetic")
        assert said.startswith("kinetic: ") and "rotated-elsewhere" not in said
        page = client.get("/connections").text
        assert "badge error" in page and "127.0.0.1" not in page
