"""The console in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)
against ``ml-connector serve`` with the Kinetic sandbox and OpenSSH: log in, read last night's runs,
open the rejected file and its reason, fix the mapping, replay from the browser, see every record
posted once. Screenshots of each page go to $ML_CONNECTOR_SCREENSHOTS (the README's come from here)
or to the test's tmp folder.

Skipped when Chromium is absent locally; required with CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..conftest import IN_CI
from ..flows.conftest import Env
from ..ops.test_replay_status import VENDORS_IN  # the same CSV vendor flow
from ..sftp.sshd import free_port

CHROMIUM = os.environ.get("ML_CONNECTOR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ML_CONNECTOR_CHROMEDRIVER", "/usr/bin/chromedriver")
PASSWORD = "night shift 2026!"

SERVE = """
serve:
  metrics_port: {port}
  console: {{enabled: true}}
"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        message = f"Chromium ({CHROMIUM}) and chromedriver ({CHROMEDRIVER}) are needed: apt-get install chromium chromium-driver"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--disable-gpu", f"--user-data-dir={tmp_path / 'chromium'}", "--no-first-run"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("ML_CONNECTOR_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _serve(env: Env, port: int) -> subprocess.Popen[bytes]:
    env.home.flows_file.write_text(env.flows_text + SERVE.format(port=port))
    proc = env.spawn("serve", "--stop-after", "600")
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("serve did not start the console: " + proc.communicate()[0].decode()[-2000:])


def test_last_night_a_rejected_file_its_reason_and_a_replay_from_the_browser(
    sqlite_env: Env, browser: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    env, driver = sqlite_env, browser
    assert isinstance(driver, WebDriver)
    shots = _shots(tmp_path)
    wait = WebDriverWait(driver, 60)

    # Last night: a partner file with two records whose terms the mapping does not know.
    env.flows(VENDORS_IN)
    env.drop("vendors_20261202.csv", "Vendor,Name,Terms\r\nB1,Night One,NET30\r\nB2,Night Two,NET45\r\n"
                                     "B3,Night Three,NET30\r\nB4,Night Four,NET45\r\n")  # fmt: skip
    first = env.run("vendors-in")
    assert first.state == "partial" and first.counts["records_failed"] == 2
    (f,) = env.store.ledger.files(flow="vendors-in")
    users = subprocess.run(env.cli_argv("users", "add", "olivia", "--role", "operator"), input=PASSWORD.encode(),
                           capture_output=True, timeout=60)  # fmt: skip
    assert users.returncode == 0, users.stderr
    port = free_port()
    proc = _serve(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        driver.get(base + "/")
        wait.until(ec.presence_of_element_located((By.ID, "name")))
        driver.save_screenshot(str(shots / "console-login.png"))
        driver.find_element(By.ID, "name").send_keys("olivia")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "login").click()
        card = wait.until(ec.presence_of_element_located((By.ID, "flow-vendors-in")))
        assert "attention" in card.text and "partial" in card.text and "2 record(s) failed" in card.text
        driver.save_screenshot(str(shots / "console-overview.png"))

        # Click 1: runs. Click 2: the run. Click 3: its rejected file, with the reason.
        driver.find_element(By.LINK_TEXT, "Runs").click()
        wait.until(ec.presence_of_element_located((By.ID, "runs")))
        assert "vendors-in" in driver.page_source and "2 record(s) failed" in driver.page_source
        driver.save_screenshot(str(shots / "console-runs.png"))
        driver.find_element(By.LINK_TEXT, str(first.run_id)[:8]).click()
        wait.until(ec.presence_of_element_located((By.ID, "events")))
        assert "record.rejected" in driver.page_source and "file.error" in driver.page_source
        driver.save_screenshot(str(shots / "console-run.png"))
        driver.find_elements(By.LINK_TEXT, "vendors_20261202.csv")[0].click()
        reason = wait.until(ec.presence_of_element_located((By.ID, "reason")))
        assert "2 of 4 records failed" in reason.text and "line 3" in reason.text and "NET45" in reason.text
        driver.save_screenshot(str(shots / "console-file-rejected.png"))

        # The mapping fix, then replay from the browser.
        env.flows(VENDORS_IN.replace("{NET30: N30}", "{NET30: N30, NET45: N45}"))
        env.home.flows_file.write_text(env.flows_text + SERVE.format(port=port))
        calls_before = dict(env.kinetic.sandbox.calls)
        before = {v["VendorID"]: v["SysRevID"] for v in env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")}
        driver.find_element(By.ID, "action-replay").click()
        wait.until(ec.presence_of_element_located((By.ID, "confirm")))
        driver.save_screenshot(str(shots / "console-confirm.png"))
        driver.find_element(By.ID, "confirm").click()
        result = wait.until(ec.presence_of_element_located((By.ID, "result")))
        assert "succeeded" in result.text and "2 records posted" in result.text, result.text
        driver.save_screenshot(str(shots / "console-replayed.png"))
        driver.back()  # a second submit of the same confirmation must not act again
        driver.find_element(By.ID, "confirm").click()
        problem = wait.until(ec.presence_of_element_located((By.ID, "problem")))
        assert "already used" in problem.text

        driver.get(f"{base}/files/{f.id}")
        records = wait.until(ec.presence_of_element_located((By.ID, "records")))
        assert records.text.count("posted") == 4 and "failed" not in records.text and "VendorNum=" in records.text
        driver.save_screenshot(str(shots / "console-file-done.png"))

        # Every record posted exactly once: the two fixed ones now, the others untouched.
        calls = {k: v - calls_before.get(k, 0) for k, v in env.kinetic.sandbox.calls.items()}
        assert calls.get("POST GetNewVendor") == 2 and calls.get("POST Update") == 2, calls
        after = {v["VendorID"]: v for v in env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")}
        assert after["B2"]["TermsCode"] == "N45" and after["B4"]["TermsCode"] == "N45"
        assert after["B1"]["SysRevID"] == before["B1"] and after["B3"]["SysRevID"] == before["B3"]
        (event,) = env.store.audit.query(kind="console.action")
        assert event.details["user"] == "olivia" and event.details["action"] == "replay"

        driver.get(f"{base}/search?q=B3")
        wait.until(ec.presence_of_element_located((By.ID, "hits")))
        assert "vendors_20261202.csv" in driver.page_source
        driver.save_screenshot(str(shots / "console-search.png"))
        driver.get(f"{base}/connections")
        wait.until(ec.presence_of_element_located((By.ID, "connections")))
        assert "127.0.0.1" not in driver.find_element(By.ID, "connections").text  # hosts are never shown
        driver.save_screenshot(str(shots / "console-connections.png"))
        driver.get(f"{base}/files")
        driver.save_screenshot(str(shots / "console-files.png"))
        driver.set_window_size(390, 844)  # a phone
        driver.get(base + "/")
        wait.until(ec.presence_of_element_located((By.ID, "flow-vendors-in")))
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 400  # no sideways scroll
        driver.save_screenshot(str(shots / "console-phone.png"))
        # No CSP violation or script error in the browser's console.
        logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE" and e.get("source") != "network"]
        assert not logs, logs
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, out[-2000:]
    assert "console on http://127.0.0.1" in out
    shutil.rmtree(tmp_path / "chromium", ignore_errors=True)
