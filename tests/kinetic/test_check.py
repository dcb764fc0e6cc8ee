"""The fit check detects each sandbox option setting (over real HTTP), and the CLI prints it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ml_connector.kinetic import KineticClient, KineticOptions
from ml_connector.kinetic.check import CheckReport, fit_check
from ml_connector.sandbox.kinetic import SandboxOptions

from .conftest import Running, no_sleep, serve
from .test_sandbox_cli import init_with_connections, run, running_sandbox  # noqa: F401 - fixture re-exported


def check(sb_options: dict[str, Any], connection: dict[str, Any] | None = None, **kw: Any) -> CheckReport:
    running = serve(SandboxOptions(api_key="check-key", users={"manager": "check-pass"}, **sb_options))
    sandbox: Running = next(running)
    sandbox.sandbox.generate_vendors(150)  # more rows than a 100-row cap: the cap shows

    async def main() -> CheckReport:
        async with KineticClient(sandbox.settings(**(connection or {})), sleep=no_sleep,
                                 options=KineticOptions(attempts=2, backoff_s=0.01)) as k:  # fmt: skip
            return await fit_check(k, **kw)

    try:
        return asyncio.run(main())
    finally:
        next(running, None)


def finding(report: CheckReport, topic: str) -> Any:
    return next(f for f in report.findings if f.topic == topic)


def test_strict_default_fits_a_default_connection() -> None:
    report = check({}, fields={"vendors": ["VendorID", "Name", "TermsCode"]})
    assert report.row_cap == 100 and report.next_link is False
    assert report.datetime_literal == "zoned" and finding(report, "datetime literal").ok
    assert not report.denied_services and "Erp.BO.CashRecSvc" in report.allowed_services
    assert finding(report, "methods Erp.BO.PaymentEntrySvc").ok
    assert "GetNewAPTran" in report.methods["Erp.BO.PaymentEntrySvc"]
    assert finding(report, "fields vendors").ok
    assert report.ok and report.settings == []


def test_detects_a_lower_row_cap_and_next_links() -> None:
    report = check({"row_cap": 7, "next_link": True}, entities=["vendors"])
    assert report.row_cap == 7 and report.next_link is True  # the probe reads one page, link not followed
    capped = check({"row_cap": 7}, entities=["vendors"])
    assert capped.row_cap == 7 and not finding(capped, "row cap").ok
    assert "page size 7" in (finding(capped, "row cap").setting or "")


def test_no_cap_is_reported_as_none_seen() -> None:
    report = check({"row_cap": 0}, entities=["vendors"])
    assert report.row_cap is None and "none seen" in finding(report, "row cap").result


@pytest.mark.parametrize(("form", "accepted"), [("zoned", "zoned"), ("naive", "naive"), ("any", "zoned")])
def test_detects_the_datetime_literal_form(form: str, accepted: str) -> None:
    report = check({"datetime_literal": form}, entities=["ap-invoices"])
    assert report.datetime_literal == accepted
    f = finding(report, "datetime literal")
    assert f.ok == (accepted == "zoned") and (f.setting == "--datetime-literal naive") == (accepted == "naive")


@pytest.mark.parametrize("status", [401, 403])
def test_detects_services_outside_the_keys_scope(status: int) -> None:
    report = check({"denied_services": ["Erp.BO.CashRecSvc"], "scope_denial_status": status})
    assert report.denied_services == ["Erp.BO.CashRecSvc"] and "Erp.BO.VendorSvc" in report.allowed_services
    f = finding(report, "scope Erp.BO.CashRecSvc")
    assert not f.ok and "access scope" in f.result and "Erp.BO.CashRecSvc" in (f.setting or "")


def test_reports_the_token_lifetime() -> None:
    report = check({"token_lifetime_s": 900}, {"auth": "token"}, entities=["vendors"])
    assert report.token_lifetime_s == 900 and finding(report, "token lifetime").result == "900 s"


def test_names_mapped_fields_the_instance_lacks() -> None:
    report = check({}, entities=["vendors"], fields={"vendors": ["VendorID", "NoSuchField", "Name"]})
    assert report.missing_fields == {"vendors": ["NoSuchField"]} and not finding(report, "fields vendors").ok


def test_write_test_creates_and_deletes_one_draft_in_the_group() -> None:
    report = check({}, entities=["vendors"], write_test="SEED01")
    f = finding(report, "write test")
    assert f.ok and "created and deleted" in f.result
    bad = check({}, entities=["vendors"], write_test="NOGROUP")
    assert not finding(bad, "write test").ok


def test_write_test_of_a_payment_group_creates_and_deletes_an_empty_header() -> None:
    report = check({}, entities=["vendors"], write_test="ap-payments:CHK01")
    f = finding(report, "write test")
    assert f.ok and "empty payment header" in f.result and "created and deleted" in f.result, f.result
    bad = check({}, entities=["vendors"], write_test="ap-payments:NOCHK")
    assert not finding(bad, "write test").ok, finding(bad, "write test").result


def test_write_test_values_are_checked() -> None:
    from ml_connector.errors import UsageError
    from ml_connector.kinetic.check import write_test_target

    assert write_test_target("SEED01") == ("ap-invoices", "SEED01")
    assert write_test_target("ap-payments:CHK01") == ("ap-payments", "CHK01")
    for bad in ("vendors:X", "ap-payments:"):
        with pytest.raises(UsageError, match="--write-test"):
            write_test_target(bad)


def test_cli_check_against_the_sandbox_command(running_sandbox: tuple[dict[str, str], list[str]]) -> None:  # noqa: F811
    env, lines = running_sandbox
    init_with_connections(env, lines)
    done = run(["connections", "check", "sandbox-kinetic", "--json"], env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["row_cap"] in (None, 100) and data["datetime_literal"] == "zoned"
    assert "Erp.BO.VendorSvc" in data["allowed_services"]
    text = run(["connections", "check", "sandbox-kinetic"], env)
    assert text.returncode == 0 and "datetime literal" in text.stdout
    home = Path(env["ML_CONNECTOR_HOME"])
    for secret_file in ("kinetic-api-key", "kinetic-password"):
        assert (home / "sandbox" / secret_file).read_text().strip() not in done.stdout + text.stdout


def test_cli_check_flows_names_a_mapped_field_the_instance_lacks(
    running_sandbox: tuple[dict[str, str], list[str]],  # noqa: F811
) -> None:
    env, lines = running_sandbox
    init_with_connections(env, lines)
    home = Path(env["ML_CONNECTOR_HOME"])
    (home / "flows.yaml").write_text(
        "flows:\n"
        "  vendors-in:\n"
        "    direction: inbound\n"
        "    epicor: sandbox-kinetic\n"
        "    entity: vendors\n"
        "    sftp: sandbox-sftp\n"
        "    folder: /inbound\n"
        "    format:\n"
        "      type: csv\n"
        "      columns:\n"
        "        - {header: Vendor, field: VendorID}\n"
        "        - {header: Rating, field: SupplierRating}\n"
    )
    done = run(["connections", "check", "sandbox-kinetic", "--flows", "--json"], env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["missing_fields"] == {"vendors": ["SupplierRating"]} and not data["ok"]
    assert "Erp.BO.CashRecSvc" not in data["allowed_services"]  # only what the flows use


def test_datetime_literal_is_a_stored_connection_setting(
    running_sandbox: tuple[dict[str, str], list[str]],  # noqa: F811
) -> None:
    env, lines = running_sandbox
    init_with_connections(env, lines, "--datetime-literal", "naive")
    shown = run(["connections", "show", "sandbox-kinetic", "--json"], env)
    assert shown.returncode == 0 and '"datetime_literal": "naive"' in shown.stdout
    done = run(["connections", "check", "sandbox-kinetic", "--json"], env)
    data = json.loads(done.stdout)
    literal = next(f for f in data["findings"] if f["topic"] == "datetime literal")
    assert not literal["ok"] and literal["setting"] == "--datetime-literal zoned"  # the strict sandbox wants a zone
    refused = run(["connections", "add-epicor", "x", "--url", "http://127.0.0.1:1/i", "--company", "C",
                   "--username", "u", "--datetime-literal", "v1", "--api-key-env", "HOME", "--password-env", "HOME"],
                  env)  # fmt: skip
    assert refused.returncode == 2 and "--datetime-literal must be 'zoned' or 'naive'" in refused.stderr
