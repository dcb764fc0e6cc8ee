"""Binding rules, TLS, the ``users`` and ``console`` commands, and the scheduler honouring a disabled flow."""

from __future__ import annotations

import datetime as dt
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from ml_connector.console.settings import ConsoleSettings, check_bind, is_loopback
from ml_connector.flows import RunContext
from ml_connector.scheduler import Scheduler
from ml_connector.secrets import Keyring
from ml_connector.store import Store
from ml_connector.store import models as m
from ml_connector.store.flow_settings import FlowSettings

from ..sftp.sshd import free_port

PUBLIC = "192.0.2.10"  # TEST-NET-1: never bound, only checked


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def test_bind_rules(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    plain = ConsoleSettings(enabled=True)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.9.9.9")
    assert not is_loopback("0.0.0.0")  # noqa: S104
    assert not is_loopback(PUBLIC) and not is_loopback("example.com")
    assert check_bind("127.0.0.1", plain) is None
    assert "without TLS" in (check_bind(PUBLIC, plain) or "")
    assert check_bind(PUBLIC, ConsoleSettings(tls_cert=cert, tls_key=key)) is None
    assert "both" in (check_bind(PUBLIC, ConsoleSettings(tls_cert=cert)) or "")
    assert "does not exist" in (check_bind(PUBLIC, ConsoleSettings(tls_cert=cert, tls_key=tmp_path / "x")) or "")
    assert "--trusted-proxy" in (check_bind(PUBLIC, ConsoleSettings(behind_proxy=True)) or "")
    bad = ConsoleSettings(behind_proxy=True, trusted_proxies=["proxy.example"])
    assert "not an IP" in (check_bind(PUBLIC, bad) or "")
    assert check_bind(PUBLIC, ConsoleSettings(behind_proxy=True, trusted_proxies=["10.0.0.5"])) is None


def test_console_and_serve_refuse_a_public_bind_without_tls(cli: object) -> None:
    run = cli
    assert run("init").exit_code == 0  # type: ignore[operator]
    res = run("console", "--host", "192.0.2.10", "--stop-after", "1")  # type: ignore[operator]
    assert res.exit_code == 2 and "without TLS" in res.stderr, res.output
    res = run("console", "--host", "192.0.2.10", "--behind-proxy", "--stop-after", "1")  # type: ignore[operator]
    assert res.exit_code == 2 and "--trusted-proxy" in res.stderr
    flows = run.home / "flows.yaml"  # type: ignore[attr-defined]
    flows.write_text(flows.read_text() + "serve:\n  metrics_host: 192.0.2.10\n  console: {enabled: true}\n")
    res = run("serve", "--stop-after", "1")  # type: ignore[operator]
    assert res.exit_code == 2 and "refusing to serve the console on 192.0.2.10" in res.stderr, res.output


def test_users_commands_hash_with_argon2id_and_never_take_the_password_as_an_argument(
    cli: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argon2

    import ml_connector.users

    monkeypatch.setattr(ml_connector.users, "PasswordHasher", argon2.PasswordHasher)  # the real costs here
    run = cli
    assert run("init").exit_code == 0  # type: ignore[operator]
    res = run("users", "add", "olivia", "--role", "operator", stdin="a long enough secret\n")  # type: ignore[operator]
    assert res.exit_code == 0, res.output
    assert run("users", "add", "olivia", stdin="another long one\n").exit_code == 2  # type: ignore[operator]
    assert run("users", "add", "sam", stdin="short\n").exit_code == 2  # type: ignore[operator]
    res = run("users", "add", "sam", "--role", "admin", stdin="a long enough secret\n")  # type: ignore[operator]
    assert res.exit_code == 2 and "viewer" in res.stderr
    res = run("users", "add", "sam", "--password", "a long enough secret")  # type: ignore[operator]
    assert res.exit_code == 2
    res = run("users", "list", "--json")  # type: ignore[operator]
    assert '"name": "olivia", "role": "operator"' in res.stdout and "secret" not in res.stdout
    store = Store.open(f"sqlite:///{run.home / 'ml-connector.db'}")  # type: ignore[attr-defined]
    try:
        with store.session() as s:
            (stored,) = s.scalars(select(m.ConsoleUser.password_hash)).all()
        assert stored.startswith("$argon2id$") and "m=65536" in stored and "a long enough secret" not in stored
        events = [e.as_json() for e in store.audit.query(kind="user", limit=None)]
        assert events and "a long enough secret" not in str(events)
    finally:
        store.close()
    assert run("users", "remove", "olivia").exit_code == 0  # type: ignore[operator]
    assert run("users", "remove", "olivia").exit_code != 0  # type: ignore[operator]


def test_console_command_over_tls_sets_secure_cookies(tmp_path: Path, cli: object) -> None:
    run = cli
    assert run("init").exit_code == 0  # type: ignore[operator]
    cert, key = _self_signed(tmp_path)
    port = free_port()
    home = run.home  # type: ignore[attr-defined]
    proc = subprocess.Popen([sys.executable, "-m", "ml_connector", "--home", str(home), "console", "--port", str(port),
                             "--tls-cert", str(cert), "--tls-key", str(key), "--stop-after", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        end, page = time.monotonic() + 30, None
        while time.monotonic() < end and page is None:
            try:
                page = httpx.get(
                    f"https://127.0.0.1:{port}/login", verify=ssl.create_default_context(cafile=str(cert)), timeout=2
                )
            except httpx.HTTPError:
                time.sleep(0.2)
        assert page is not None and page.status_code == 200
        cookie = page.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)  # plain HTTP is not spoken
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert f"console on https://127.0.0.1:{port}/ (read-only)" in out, out


def test_scheduler_lets_the_slots_of_a_disabled_flow_pass(tmp_path: Path, db_url: str, keyring: Keyring) -> None:
    store = Store.open(db_url)
    flows_path = tmp_path / "flows.yaml"
    flows_path.write_text("flows:\n  f:\n    direction: outbound\n    schedule: '*/5 * * * *'\n    epicor: k\n"
                          "    entity: vendors\n    sftp: s\n    folder: /out\n    format: {type: csv}\n")  # fmt: skip
    sched = Scheduler(flows_path, store, lambda _: RunContext(store=store, keyring=keyring, staging=tmp_path), "a")
    sched.load(first=True)
    flow = sched.flows.flows["f"]
    t0 = dt.datetime(2026, 11, 24, 10, 2, tzinfo=dt.UTC)
    assert sched.due("f", flow, t0) is None  # the first slot is claimed, not run
    FlowSettings(store).set_enabled("f", False, by="olivia")
    assert sched.due("f", flow, t0 + dt.timedelta(minutes=5)) is None
    FlowSettings(store).set_enabled("f", True, by="olivia")
    # The slot that passed while disabled is not run as a catch-up; the next one is.
    assert sched.due("f", flow, t0 + dt.timedelta(minutes=6)) is None
    assert sched.due("f", flow, t0 + dt.timedelta(minutes=10)) == dt.datetime(2026, 11, 24, 10, 10, tzinfo=dt.UTC)
    store.close()


def test_demo_login_makes_a_fresh_operator_each_time(tmp_path: Path) -> None:
    from ml_connector.console.demo import demo_login
    from ml_connector.home import Home
    from ml_connector.users import Users

    home = Home.resolve(tmp_path / "demo")
    home.init(environ={})
    first = demo_login(home.path)
    second = demo_login(home.path)
    pw1 = first[-1].split(" / ")[1].split()[0]
    pw2 = second[-1].split(" / ")[1].split()[0]
    assert pw1 != pw2 and "http://127.0.0.1:9464/" in first[1] and "console --actions" in first[1]
    store = Store.open(home.database_url)
    try:
        users = Users(store)
        assert users.verify("demo", pw2) is not None and users.verify("demo", pw1) is None
        assert users.get("demo").role == "operator"
    finally:
        store.close()


def test_console_on_a_port_in_use_is_one_clear_line(cli: object) -> None:
    import socket

    run = cli
    assert run("init").exit_code == 0  # type: ignore[operator]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = run("console", "--port", str(port), "--stop-after", "1")  # type: ignore[operator]
    assert res.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in res.stderr and "--port" in res.stderr
    assert "Traceback" not in res.output
