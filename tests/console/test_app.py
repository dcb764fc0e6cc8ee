"""Console pages and actions through Starlette's TestClient: auth, roles, CSRF, escaping, secrets."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from ml_connector.console.app import Console, create_app, sparkline
from ml_connector.console.security import CSP
from ml_connector.console.settings import ConsoleSettings
from ml_connector.store.flow_settings import FlowSettings, is_disabled

from .conftest import (
    CANARY,
    HOSTILE_ATTR,
    HOSTILE_ERROR,
    HOSTILE_NAME,
    HOSTILE_VENDOR,
    PASSWORD,
    World,
    act,
    csrf,
    nonce,
)


def pages(world: World) -> list[str]:
    ids = world.ids
    return ["/", "/runs", f"/runs/{ids['run']}", f"/runs/{str(ids['run'])[:8]}", "/files", f"/files/{ids['bad']}",
            f"/files/{ids['attr']}", f"/files/{ids['intent']}", "/search?q=script", "/search?q=V2",
            "/connections", "/runs?flow=vendors-in&outcome=partial&since=24h", "/runs?before=2999-01-01", "/files?state=error",
            "/actions/run?target=vendors-in", f"/actions/replay?target={ids['bad']}",
            "/actions/test?target=partner"]  # fmt: skip


def test_every_page_needs_a_login(world: World) -> None:
    for path in pages(world):
        r = world.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    assert world.client.post("/actions/run", data={"target": "vendors-in"}, follow_redirects=False).status_code == 303


def test_login_sets_a_strict_httponly_expiring_cookie_and_audits(world: World) -> None:
    page = world.client.get("/login")
    r = world.client.post("/login", data={"name": "olivia", "password": PASSWORD, "csrf": csrf(page.text)},
                          follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=28800" in cookie
    assert world.client.get("/").status_code == 200
    events = world.store.audit.query(kind="console.login")
    assert events[-1].subject == "olivia" and events[-1].outcome == "ok" and "password" not in str(events[-1].details)
    assert PASSWORD not in str([e.as_json() for e in world.store.audit.query(limit=None)])


def test_wrong_password_unknown_user_and_missing_csrf_are_refused(world: World) -> None:
    page = world.client.get("/login")
    token = csrf(page.text)
    r = world.client.post("/login", data={"name": "olivia", "password": "wrong wrong", "csrf": token})
    assert r.status_code == 401 and "Wrong name or password" in r.text
    r = world.client.post("/login", data={"name": "nobody", "password": PASSWORD, "csrf": token})
    assert r.status_code == 401
    r = world.client.post("/login", data={"name": "olivia", "password": PASSWORD})
    assert r.status_code == 403
    assert world.client.get("/", follow_redirects=False).status_code == 303
    failures = [e for e in world.store.audit.query(kind="console.login") if e.outcome == "error"]
    assert {e.subject for e in failures} == {"olivia", None}
    # A name that is no user's is not kept: it is often a password typed into the wrong field.
    typo = "Tr0ub4dor&3-in-the-name-field"
    world.client.post("/login", data={"name": typo, "password": "x", "csrf": token})
    trail = str([e.as_json() for e in world.store.audit.query(limit=None)])
    assert typo not in trail and "nobody" not in trail and "(not a console user)" in trail


def test_the_login_limiter_stays_bounded_under_a_flood_of_names() -> None:
    from ml_connector.console.security import LoginLimiter

    now = [0.0]
    limiter = LoginLimiter(attempts=3, window_s=60, clock=lambda: now[0], max_keys=100)
    for _ in range(3):
        limiter.failed("olivia", "10.0.0.1")
    for i in range(1000):  # every name and address new, all inside the window
        now[0] += 0.01
        limiter.failed(f"name{i}", f"10.1.{i // 250}.{i % 250}")
        assert len(limiter._failures) <= 101
    now[0] += 61  # the window passed: stale keys go first, before any key with a recent failure
    for i in range(30):
        limiter.failed(f"late{i}", "10.9.9.9")
    assert set(limiter._failures) == {f"user:late{i}" for i in range(30)} | {"addr:10.9.9.9"}
    limiter = LoginLimiter(attempts=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        limiter.failed("olivia", "10.0.0.1")
    assert limiter.blocked("olivia", "10.0.0.2") and limiter.blocked("someone", "10.0.0.1")


def test_login_rate_limit_blocks_even_the_right_password(world: World) -> None:
    token = csrf(world.client.get("/login").text)
    for _ in range(5):
        r = world.client.post("/login", data={"name": "victor", "password": "not it at all", "csrf": token})
        assert r.status_code == 401
    r = world.client.post("/login", data={"name": "victor", "password": PASSWORD, "csrf": token})
    assert r.status_code == 429 and "Too many" in r.text
    assert any(e.details.get("reason") == "rate limited" for e in world.store.audit.query(kind="console.login"))


def test_open_redirect_is_refused(world: World) -> None:
    token = csrf(world.client.get("/login").text)
    r = world.client.post("/login?next=//evil.example/x", data={"name": "olivia", "password": PASSWORD, "csrf": token},
                          follow_redirects=False)  # fmt: skip
    assert r.headers["location"] == "/"
    for bad in ("/\\evil.example", "/%09/evil.example", "https://evil.example/", "/\t/evil.example"):
        world.client.post("/logout", data={"csrf": csrf(world.client.get("/").text)})
        token = csrf(world.client.get("/login").text)
        r = world.client.post("/login", params={"next": bad}, data={"name": "olivia", "password": PASSWORD,
                                                                     "csrf": token}, follow_redirects=False)  # fmt: skip
        assert r.headers["location"] in ("/", "/%09/evil.example"), (bad, r.headers["location"])
    token = csrf(world.client.get("/login").text)
    r = world.client.post("/login", params={"next": "/runs?flow=vendors-in"},
                          data={"name": "olivia", "password": PASSWORD, "csrf": token}, follow_redirects=False)  # fmt: skip
    assert r.headers["location"] == "/runs?flow=vendors-in"


def test_pages_render_with_strict_csp_and_no_inline_script(world: World) -> None:
    world.login()
    for path in pages(world):
        r = world.client.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert r.headers["content-security-policy"] == CSP and "unsafe-inline" not in CSP
        assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
        for tag in re.findall(r"<script[^>]*>", r.text):
            assert 'src="/static/' in tag, (path, tag)
        assert (
            " style=" not in r.text
            and "<style" not in r.text
            and " onerror=" not in r.text.replace("onerror=alert", "")
        )
    js = world.client.get("/static/htmx.min.js")
    assert js.status_code == 200 and "htmx" in js.text[:300]


def test_hostile_names_vendors_and_errors_are_escaped(world: World) -> None:
    world.login()
    for path in pages(world):
        body = world.client.get(path).text
        for raw in (HOSTILE_NAME, HOSTILE_ATTR, HOSTILE_VENDOR, HOSTILE_ERROR, "<script>alert", "<img src=x"):
            assert raw not in body, (path, raw)
    body = world.client.get(f"/files/{world.ids['bad']}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in body  # shown, as text
    assert "&lt;img src=x onerror=alert(&#39;v&#39;)&gt;" in body
    assert "line 3" in body and "is not valid" in body  # the reason, with its failing line
    attr = world.client.get(f"/files/{world.ids['attr']}").text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;.csv" in attr


def test_canary_no_secret_host_or_user_on_any_page(world: World) -> None:
    world.login()
    for path in pages(world):
        body = world.client.get(path).text
        for name, value in CANARY.items():
            assert value not in body, (path, name)
    conn = world.client.get("/connections").text
    assert "kinetic" in conn and "partner" in conn and "•••" in conn  # the leaked error text, blanked


def test_runs_filters_narrow_the_list(world: World) -> None:
    world.login()
    short = str(world.ids["run"])[:8]
    assert short in world.client.get("/runs?flow=vendors-in&outcome=partial&since=24h").text
    assert short not in world.client.get("/runs?flow=vendors-out").text
    assert short not in world.client.get("/runs?outcome=succeeded").text
    assert short not in world.client.get("/runs?before=2000-01-01").text
    assert world.client.get("/runs?before=yesterday").status_code == 400
    assert world.client.get("/runs?after=garbage").status_code == 400


def test_viewer_sees_pages_but_no_actions(world: World) -> None:
    world.login("victor")
    assert world.client.get("/").status_code == 200
    assert "Run now" not in world.client.get("/").text
    r = world.client.get("/actions/run?target=vendors-in")
    assert r.status_code == 403 and "viewer" in r.text
    token = csrf(world.client.get("/").text)
    r = world.client.post("/actions/disable", data={"target": "vendors-in", "csrf": token, "nonce": "x"})
    assert r.status_code == 403 and not is_disabled(world.store, "vendors-in")


def test_action_needs_csrf_and_a_one_shot_confirmation(world: World) -> None:
    world.login()
    confirm = world.client.get("/actions/disable?target=vendors-in")
    assert confirm.status_code == 200 and "Disable the flow" in confirm.text
    once = nonce(confirm.text)
    r = world.client.post("/actions/disable", data={"target": "vendors-in", "nonce": once})
    assert r.status_code == 403 and not is_disabled(world.store, "vendors-in")  # no CSRF token
    r = world.client.post("/actions/disable", data={"target": "vendors-in", "nonce": once, "csrf": csrf(confirm.text)})
    assert r.status_code == 200 and "vendors-in: disabled" in r.text and is_disabled(world.store, "vendors-in")
    again = world.client.post("/actions/disable", data={"target": "vendors-in", "nonce": once,
                                                        "csrf": csrf(confirm.text)})  # fmt: skip
    assert again.status_code == 409 and "already used" in again.text
    (event,) = world.store.audit.query(kind="console.action")
    assert event.details["user"] == "olivia" and event.details["action"] == "disable" and event.outcome == "ok"
    # A nonce issued for one target does not authorise another.
    confirm = world.client.get("/actions/enable?target=vendors-in")
    once = nonce(confirm.text)
    r = world.client.post("/actions/enable", data={"target": "vendors-out", "nonce": once, "csrf": csrf(confirm.text)})
    assert r.status_code == 409
    overview = world.client.get("/").text
    assert "paused in the console" in overview


def test_abandon_intent_and_refusals(world: World) -> None:
    world.login()
    body = act(world.client, "abandon", str(world.ids["intent"]))
    assert "abandoned" in body
    f = world.store.ledger.file(int(world.ids["intent"]))  # type: ignore[call-overload]
    assert f is not None and f.state == "abandoned" and "olivia" in (f.error or "")
    body = act(world.client, "abandon", str(world.ids["intent"]))  # a second time: refused, nothing changes
    assert "only a pending intent can be abandoned" in body
    body = act(world.client, "resend", str(world.ids["bad"]))
    assert "no outbound file" in body
    actions = world.store.audit.query(kind="console.action")
    assert [e.outcome for e in actions] == ["ok", "error", "error"]
    assert world.client.get("/actions/replay?target=999999").status_code == 404
    assert world.client.get("/actions/nope?target=x").status_code == 404


def test_removed_user_loses_the_session(world: World) -> None:
    world.login("victor")
    assert world.client.get("/").status_code == 200
    from ml_connector.users import Users

    Users(world.store).remove("victor")
    assert world.client.get("/", follow_redirects=False).status_code == 303


def test_logout_needs_csrf_and_ends_the_session(world: World) -> None:
    world.login()
    assert world.client.post("/logout", data={}).status_code == 403
    token = csrf(world.client.get("/").text)
    world.client.post("/logout", data={"csrf": token})
    assert world.client.get("/", follow_redirects=False).status_code == 303


def test_read_only_console_refuses_actions(world: World) -> None:
    ro = Console(world.home, world.store, ConsoleSettings(enabled=True, actions=False))
    with TestClient(create_app(ro), base_url="http://127.0.0.1") as client:
        world.login(client=client)
        assert "read-only" in client.get("/").text and "Run now" not in client.get("/").text
        assert client.get("/actions/run?target=vendors-in").status_code == 403


def test_expired_session_cookie_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from itsdangerous.timed import TimestampSigner

    world.login()
    assert world.client.get("/", follow_redirects=False).status_code == 200
    # The signature's timestamp is checked against max_age: move the signer's clock past 8 hours.
    later = int(time.time()) + 8 * 3600 + 5
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    assert world.client.get("/", follow_redirects=False).status_code == 303


def test_a_session_ends_after_session_minutes_even_when_used(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    world.login()
    start = datetime.now(UTC)
    world.console.clock = lambda: start + timedelta(minutes=479)
    assert world.client.get("/", follow_redirects=False).status_code == 200  # still within 8 hours
    world.console.clock = lambda: start + timedelta(minutes=481)
    assert world.client.get("/", follow_redirects=False).status_code == 303


def test_flow_settings_and_sparkline_helpers(world: World) -> None:
    fs = FlowSettings(world.store)
    assert fs.set_enabled("x", False, by="t") and not fs.set_enabled("x", False, by="t") and fs.all() == {"x": False}
    line = sparkline([("d1", 0, 0), ("d2", 2, 10), ("d3", 1, 5)])
    assert line["runs"].split()[1].endswith(",2.0") and "3 runs, 15 records" in line["title"]


def test_a_request_for_another_host_name_is_refused(world: World) -> None:
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 must not reach the console."""
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example", ""):
        r = world.client.get("/login", headers={"host": host})
        assert r.status_code == 400 and r.text == "Invalid host header", host
    for host in ("127.0.0.1:8080", "localhost", "LOCALHOST:1", "[::1]:8080", "127.0.0.2"):
        assert world.client.get("/login", headers={"host": host}).status_code == 200, host


def test_allowed_hosts_name_the_console_behind_tls_or_a_proxy() -> None:
    from ml_connector.console.security import HostCheck, host_name

    assert host_name("[::1]:8080") == "::1" and host_name("Console.Example.com:443") == "console.example.com"
    assert host_name("::1") == "::1"
    named = HostCheck(object(), ["console.example.com", "*.corp.example"], loopback_only=False)  # type: ignore[arg-type]
    assert named.allows("console.example.com") and named.allows("ops.corp.example") and named.allows("127.0.0.1")
    assert not named.allows("corp.example.evil") and not named.allows("evil.example")
    anything = HostCheck(object(), [], loopback_only=False)  # type: ignore[arg-type]
    assert anything.allows("whatever.example")  # TLS or a proxy with no names given: as before
    loopback = HostCheck(object(), [], loopback_only=True)  # type: ignore[arg-type]
    assert loopback.allows("localhost") and not loopback.allows("whatever.example")


def test_the_overview_counts_what_status_counts(world: World) -> None:
    """One health reading (store/health.py): the overview's words and counts are status's."""
    from ml_connector.config import load_flows
    from ml_connector.states import RunState
    from ml_connector.store.health import read_flows
    from ml_connector.store.readers import store_reader

    run = world.store.ledger.start_run("vendors-in", "inbound", "schedule")
    world.store.ledger.refuse(flow="vendors-in", run_id=run, remote_path="/inbound/link", reason="not a regular file")
    world.store.ledger.finish_run(run, RunState.SUCCEEDED, {})
    names = list(load_flows(world.home.flows_file).flows)
    with store_reader(world.home.database_url) as reader:
        status = {f.flow: f for f in read_flows(reader, names, now=world.console.clock())}
    page = world.login().get("/").text
    for name, f in status.items():
        section = page.split(f'id="flow-{name}"', 1)[1].split("</section>", 1)[0]
        assert f'class="badge {f.word}"' in section, (name, f.word)
        assert f"<dt>failed records</dt><dd>{f.health.records_failed}</dd>" in section, name
    vend = page.split('id="flow-vendors-in"', 1)[1].split("</section>", 1)[0]
    assert status["vendors-in"].health.files_refused == 1 and "names refused" in vend and "state=refused" in vend
    assert world.client.get("/files?state=refused").status_code == 200
