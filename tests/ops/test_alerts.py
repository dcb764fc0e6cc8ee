"""Alerts delivered to a real loopback webhook receiver and a real SMTP server (aiosmtpd with
STARTTLS and AUTH), throttled, and in the audit trail."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ml_connector.alerts import SIGNATURE_HEADER, Alert, Alerter
from ml_connector.config import AlertsConfig, EmailChannel, WebhookChannel
from ml_connector.store import Store

from ..flows.conftest import Env
from ..sftp.sshd import free_port


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(({k: v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/mlc", Hook.received
    server.shutdown()
    server.server_close()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))  # fmt: skip
    cert_path, key_path = tmp / "smtp.pem", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[int, Inbox, Path]]:
    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    inbox = Inbox()

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"alerts" and data.password == b"smtp-secret-9"
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True,
                            authenticator=auth, auth_require_tls=True)  # fmt: skip
    controller.start()
    yield port, inbox, cert
    controller.stop()


def _config(url: str, port: int, ca: Path, throttle: float = 60) -> AlertsConfig:
    return AlertsConfig(
        webhook=WebhookChannel(url=url, secret_env="MLC_HOOK_SECRET"),
        email=EmailChannel(host="127.0.0.1", port=port, username="alerts", password_env="MLC_SMTP_PASSWORD",
                           sender="mlc@example.test", to=["ops@example.test"], ca_file=str(ca)),
        throttle_minutes=throttle,
    )  # fmt: skip


ENVIRON = {"MLC_HOOK_SECRET": "hook-secret-3", "MLC_SMTP_PASSWORD": "smtp-secret-9"}


def test_alerts_reach_webhook_and_smtp_signed_and_throttled(store: Store, webhook: Any, smtp: Any) -> None:
    url, received = webhook
    port, inbox, ca = smtp
    alerter = Alerter(_config(url, port, ca), store, environ=ENVIRON)
    alert = Alert("file_rejected", "remit-in", "/in/bad.820", "bad.820: segment 7 BPR02: not a number")
    first = asyncio.run(alerter.deliver([alert]))
    assert first == {"sent": 1, "throttled": 0, "failed": 0}
    ((headers, body),) = received
    expected = "sha256=" + hmac.new(b"hook-secret-3", body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    assert json.loads(body)["kind"] == "file_rejected" and json.loads(body)["flow"] == "remit-in"
    (mail,) = inbox.messages
    parsed = message_from_bytes(mail)
    assert "file rejected" in parsed["Subject"] and "segment 7 BPR02" in parsed.get_payload()
    # a broken partner: the same alert 50 more times within the window sends nothing more
    again = asyncio.run(alerter.deliver([alert] * 50))
    assert again == {"sent": 0, "throttled": 50, "failed": 0}
    assert len(received) == 1 and len(inbox.messages) == 1
    other = asyncio.run(alerter.deliver([Alert("run_failed", "remit-in", "remit-in", "boom")]))
    assert other["sent"] == 1  # another kind is not throttled by the first
    events = store.audit.query(kind="alert_delivery", limit=None)
    assert [e.kind for e in events].count("alert_delivery.throttled") == 50
    text = json.dumps([e.details for e in events])
    assert "smtp-secret-9" not in text and "hook-secret-3" not in text


def test_a_failing_channel_is_audited_not_raised(store: Store, smtp: Any) -> None:
    port, inbox, ca = smtp
    cfg = _config(f"http://127.0.0.1:{free_port()}/nobody", port, ca, throttle=0)
    assert cfg.email is not None
    cfg = cfg.model_copy(update={"email": cfg.email.model_copy(update={"timeout_s": 3.0})})
    alerter = Alerter(cfg, store, environ={**ENVIRON, "MLC_SMTP_PASSWORD": "wrong"})
    counts = asyncio.run(alerter.deliver([Alert("run_failed", "f", "f", "x")]))
    assert counts["failed"] == 1 and not inbox.messages
    (event,) = store.audit.query(kind="alert_delivery.failed", limit=None)
    assert any("webhook" in e for e in event.details["errors"]) and any("email" in e for e in event.details["errors"])
    assert "wrong" not in json.dumps(event.details)


def test_run_outcomes_become_alerts(env: Env, webhook: Any) -> None:
    url, received = webhook
    env.flows("""
    vendors-in:
      direction: inbound
      epicor: kinetic
      entity: vendors
      sftp: sftp
      folder: "{base}/inbound"
      error_folder: "{base}/error"
      settle_seconds: 0
      format: {type: csv}
    """)
    env.drop("broken.csv", "Nope,Header\r\nx,y\r\n")
    result = env.run("vendors-in")
    cfg = AlertsConfig(webhook=WebhookChannel(url=url), repeated_failures=2)
    alerter = Alerter(cfg, env.store, environ={})
    alerts = alerter.from_run(result)
    assert {a.kind for a in alerts} >= {"file_rejected"}
    asyncio.run(alerter.deliver(alerts))
    kinds = {json.loads(b)["kind"] for _, b in received}
    assert "file_rejected" in kinds
    # two failed runs in a row: a failed run and a repeated-failure alert
    env.store.connections.remove("sftp")
    env.store.connections.add("sftp", env.target.settings(port=free_port()), env.keyring)  # nothing listens
    fails = [env.run("vendors-in") for _ in range(2)]
    assert all(f.state == "failed" for f in fails)
    kinds2 = {a.kind for a in alerter.from_run(fails[-1])}
    assert {"run_failed", "repeated_failures"} <= kinds2


def test_outbound_x12_without_an_ack_in_time_raises_one_alert(store: Store) -> None:
    file_id = store.ledger.record_intent(flow="payments-out", run_id="r1", remote_path="/out/remit.820",
                                         local_path="/nowhere", sha256="0" * 64, size=10, details={})  # fmt: skip
    store.ledger.update_file(
        file_id, state="delivered", details={"ack": "pending", "delivered_at": datetime.now(UTC).isoformat()}
    )
    alerter = Alerter(AlertsConfig(ack_timeout_minutes=30), store, environ={})
    assert alerter.overdue_acks() == []  # just sent: not overdue yet
    store.ledger.update_file(file_id, details={"delivered_at": (datetime.now(UTC) - timedelta(minutes=31)).isoformat()})
    (alert,) = alerter.overdue_acks()
    assert alert.kind == "ack_overdue" and alert.flow == "payments-out" and "remit.820" in alert.message
    assert alerter.overdue_acks() == []  # alerted once, not every minute
