"""The strict sandbox over real HTTP: each rule refuses what Kinetic refuses, accepts the right call
shape, and its lenient value restores the old behaviour.

Calls go through plain httpx (not the product client, which is being rewritten for these rules),
so each test shows the exact wire shape the sandbox takes and answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from ml_connector.sandbox.kinetic import SERVICE_METHODS, KineticSandbox, SandboxOptions
from ml_connector.sandbox.kinetic_methods import METHODS
from ml_connector.sandbox.kinetic_schema import SERVICES

from .conftest import Running

VENDOR = "Erp.BO.VendorSvc"
AP = "Erp.BO.APInvoiceSvc"
PAY = "Erp.BO.PaymentEntrySvc"
CASH = "Erp.BO.CashRecSvc"


class Wire:
    """Plain HTTP calls against a running sandbox, authenticated as Kinetic expects."""

    def __init__(self, run: Running) -> None:
        o = run.sandbox.options
        self.sandbox = run.sandbox
        self.root = run.url
        self.base = f"{run.url}/{o.instance}/api/v2/odata/{o.company}"
        self.http = httpx.Client(headers={"x-api-key": o.api_key}, auth=("manager", o.users["manager"]), timeout=10.0)

    def post(self, service: str, name: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(f"{self.base}/{service}/{name}", json=body)

    def get(self, service: str, name: str, **params: Any) -> httpx.Response:
        return self.http.get(f"{self.base}/{service}/{name}", params=params)

    def call(self, service: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.post(service, name, body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def ds(self, service: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.call(service, name, body)["parameters"]["ds"]
        return out

    def read(self, service: str, **params: Any) -> dict[str, Any]:
        response = self.get(service, "GetByID", **params)
        assert response.status_code == 200, response.text
        out: dict[str, Any] = response.json()["returnObj"]
        return out

    def rows(self, service: str, entity_set: str, **params: Any) -> list[dict[str, Any]]:
        response = self.get(service, entity_set, **params)
        assert response.status_code == 200, response.text
        out: list[dict[str, Any]] = response.json()["value"]
        return out

    def option(self, **changes: Any) -> httpx.Response:
        return self.http.post(f"{self.root}/_sandbox/options", json=changes)


@pytest.fixture
def wire(sandbox: Running) -> Iterator[Wire]:
    w = Wire(sandbox)
    yield w
    w.http.close()


def epicor_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The Epicor error body, after checking the status and its shape."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert {"HttpStatus", "ReasonPhrase", "ErrorMessage", "ErrorType"} <= set(body)
    assert body["HttpStatus"] == status
    return body


# --- the method table --------------------------------------------------------------------------


def test_every_served_method_is_declared_in_the_table() -> None:
    sandbox = KineticSandbox(SandboxOptions())
    for service in SERVICES:
        served = sandbox.served(service)
        assert served, service
        assert served == set(METHODS[service]), service  # nothing served undeclared, nothing stale
    assert set(SERVICE_METHODS) <= set(SERVICES)


def test_defaults_are_strict_and_lenient_turns_every_rule_off() -> None:
    strict, lenient = SandboxOptions(), SandboxOptions.lenient()
    assert (strict.strict_parameters, strict.posted_read_only, strict.full_row_updates, strict.entry_rules) == (
        True, True, True, True)  # fmt: skip
    assert (strict.row_cap, strict.child_set_filter, strict.datetime_literal, strict.post_reads) == (
        100, "parent", "zoned", "refuse")  # fmt: skip
    assert (strict.duplicate_status, strict.scope_denial_status, strict.case_insensitive_keys) == (409, 403, False)
    assert not (
        lenient.strict_parameters or lenient.posted_read_only or lenient.full_row_updates or lenient.entry_rules
    )
    assert (lenient.row_cap, lenient.child_set_filter, lenient.datetime_literal, lenient.post_reads) == (
        0, "table", "any", "allow")  # fmt: skip
    with pytest.raises(ValueError, match="datetime_literal must be one of"):
        SandboxOptions(datetime_literal="utc")


def test_options_endpoint_refuses_a_value_an_option_does_not_take(wire: Wire) -> None:
    response = wire.option(child_set_filter="children")
    assert response.status_code == 400 and "child_set_filter" in response.json()["error"]
    assert wire.sandbox.options.child_set_filter == "parent"
    assert wire.option(child_set_filter="table").json()["child_set_filter"] == "table"


def test_metadata_shows_fields_and_method_signatures(wire: Wire) -> None:
    """What a fit check reads: the row types' fields and each method's parameter names."""
    response = wire.get(PAY, "$metadata")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    edm = "{http://docs.oasis-open.org/odata/ns/edm}"
    schema = ElementTree.fromstring(response.text).find(f".//{edm}Schema")  # noqa: S314 - our own sandbox's output
    assert schema is not None and schema.get("Namespace") == PAY
    rows = {t.get("Name"): t for t in schema.findall(f"{edm}EntityType")}
    assert {p.get("Name"): p.get("Type") for p in rows["CheckHedRow"].findall(f"{edm}Property")}[
        "ManualPrint"
    ] == "Edm.Boolean"
    assert [k.get("Name") for k in rows["APTranRow"].findall(f"{edm}Key/{edm}PropertyRef")] == [
        "Company", "HeadNum", "APTranNo", "InvoiceNum", "Voided"]  # fmt: skip
    actions = {
        a.get("Name"): [p.get("Name") for p in a.findall(f"{edm}Parameter")] for a in schema.findall(f"{edm}Action")
    }
    assert actions["GetNewAPTran"] == ["ds", "headNum", "apTranNo", "invoiceNum"] and "ChangeVendorID" not in actions
    sets = wire.get(PAY, "").json()["value"]
    assert [s["name"] for s in sets] == ["PaymentEntries", "APTrans"]
    wire.option(denied_services=[PAY])
    epicor_error(wire.get(PAY, "$metadata"), 403)


# --- strict_parameters ---------------------------------------------------------------------------


def test_a_missing_parameter_is_refused_by_name(wire: Wire) -> None:
    body = epicor_error(wire.post(PAY, "GetNewAPTran", {"ds": {}, "headNum": 1, "invoiceNum": "X"}), 400)
    assert body["ErrorMessage"] == "Parameter apTranNo is not found in the input object."
    body = epicor_error(wire.post(CASH, "UpdateMaster", {"ds": {}, "ipGroupID": "CASH01", "ipTableName": "CashHead"}), 400)  # fmt: skip
    assert body["ErrorMessage"] == "Parameter updGroupTotals is not found in the input object."
    body = epicor_error(wire.post(PAY, "OnChangeInvoiceNum", {"pcInvoiceNum": "INV-001-1", "ds": {}}), 400)
    assert "pcChangeExchangeRateResponse" in body["ErrorMessage"]
    # A method the service does not have is not found, rather than answered by another service's code.
    epicor_error(
        wire.post(VENDOR, "ChangeVendorID", {"ProposedVendorID": "V0001", "confirmCheck": True, "ds": {}}), 404
    )
    stats = wire.http.get(f"{wire.root}/_sandbox/stats").json()
    assert stats["strict_refusals"] == {"strict_parameters": 4}  # what a client engineer reads to see why


def test_a_complete_call_is_accepted_and_lenient_accepts_the_old_shape(wire: Wire) -> None:
    ds = wire.ds(CASH, "GetNewCashHeadType", {"ds": {}, "groupID": "CASH01", "tranType": "PayInv"})
    assert ds["CashHead"][0]["RowMod"] == "A" and ds["CashHead"][0]["GroupID"] == "CASH01"
    epicor_error(wire.post(CASH, "GetNewCashHead", {"ds": {}}), 400)
    wire.option(strict_parameters=False)
    assert wire.ds(CASH, "GetNewCashHead", {"ds": {}})["CashHead"][0]["RowMod"] == "A"


# --- post_reads ----------------------------------------------------------------------------------


def test_reads_by_post_are_refused_and_taken_by_get(wire: Wire) -> None:
    body = epicor_error(wire.post(VENDOR, "GetByID", {"vendorNum": 3}), 405)
    assert "use GET" in body["ErrorMessage"]
    assert wire.sandbox.strict_refusals == {"post_reads": 1}
    assert wire.read(VENDOR, vendorNum=3)["Vendor"][0]["VendorID"] == "V0003"
    listed = wire.get(VENDOR, "GetList", whereClause="", pageSize=5, absolutePage=0).json()
    assert len(listed["returnObj"]["VendorList"]) == 5 and listed["parameters"]["morePages"] is True
    epicor_error(wire.get(VENDOR, "GetByID"), 400)  # the query string is checked like a body
    wire.option(post_reads="allow")
    assert wire.call(VENDOR, "GetByID", {"vendorNum": 3})["returnObj"]["Vendor"][0]["VendorNum"] == 3


# --- row_cap and next_link -----------------------------------------------------------------------


def test_lists_are_capped_whatever_top_asks(wire: Wire) -> None:
    wire.sandbox.generate_vendors(150)  # 162 in all
    response = wire.get(VENDOR, "Vendors", **{"$top": 500, "$orderby": "VendorNum"})
    assert len(response.json()["value"]) == 100 and "@odata.nextLink" not in response.json()
    wire.option(next_link=True)
    body = wire.get(VENDOR, "Vendors", **{"$top": 500, "$orderby": "VendorNum"}).json()
    assert len(body["value"]) == 100 and "%24skip=100" in body["@odata.nextLink"]
    wire.option(row_cap=0, next_link=False)
    assert len(wire.rows(VENDOR, "Vendors", **{"$top": 500})) == 162
    assert len(wire.rows(VENDOR, "Vendors")) == 100  # without $top: the default page


def test_get_rows_returns_the_tableset_and_lists_are_capped(wire: Wire) -> None:
    wire.sandbox.generate_payments(3, vendor_num=2)
    where = {name: "" for name in METHODS[PAY]["GetRows"] if name.startswith("whereClause")}
    where["whereClauseCheckHed"] = "VendorNum = 2 BY HeadNum"
    body = wire.get(PAY, "GetRows", **where, pageSize=2, absolutePage=0).json()
    heads = [h["HeadNum"] for h in body["returnObj"]["CheckHed"]]
    assert len(heads) == 2 and body["parameters"]["morePages"] is True
    assert sorted(t["HeadNum"] for t in body["returnObj"]["APTran"]) == sorted(heads)  # the lines of that page only
    epicor_error(wire.get(PAY, "GetRows", whereClauseCheckHed="", pageSize=2, absolutePage=0), 400)  # all clauses
    wire.sandbox.generate_vendors(150)
    listed = wire.get(VENDOR, "GetList", whereClause="", pageSize=0, absolutePage=0).json()  # 0: "no maximum"
    assert len(listed["returnObj"]["VendorList"]) == 100 and listed["parameters"]["morePages"] is True
    wire.option(row_cap=0)
    listed = wire.get(VENDOR, "GetList", whereClause="", pageSize=500, absolutePage=0).json()
    assert len(listed["returnObj"]["VendorList"]) == 162 and listed["parameters"]["morePages"] is False


# --- child_set_filter and $expand ----------------------------------------------------------------


def test_a_child_set_filter_applies_to_the_parent_type(wire: Wire) -> None:
    wire.sandbox.generate_payments(3, vendor_num=2)
    body = epicor_error(wire.get(PAY, "APTrans", **{"$filter": "InvoiceNum eq 'GEN00000012'"}), 500)
    assert "InvoiceNum" not in body["ErrorMessage"] and all(not d.get("Field") for d in body["ErrorDetails"])
    epicor_error(wire.get(CASH, "CashDtls", **{"$filter": "InvoiceRef eq 0"}), 500)
    lines = wire.rows(PAY, "APTrans", **{"$filter": "HeadNum eq 2"})  # a parent column: that payment's lines
    assert [(t["HeadNum"], t["APTranNo"]) for t in lines] == [(2, 0)]
    # The documented reads: the parent set expanded, and GetByID's tableset.
    heads = wire.rows(PAY, "PaymentEntries", **{"$filter": "VendorNum eq 2", "$expand": "APTrans"})
    assert [len(h["APTrans"]) for h in heads] == [1, 1, 1] and heads[0]["APTrans"][0]["HeadNum"] == heads[0]["HeadNum"]
    assert len(wire.read(PAY, headNum=2)["APTran"]) == 1
    epicor_error(wire.get(PAY, "PaymentEntries", **{"$expand": "CashDtls"}), 400)
    wire.option(child_set_filter="table")
    assert len(wire.rows(PAY, "APTrans", **{"$filter": "InvoiceNum eq 'GEN00000012'"})) == 1


# --- query_plan_errors ---------------------------------------------------------------------------


def test_a_filter_on_a_display_field_is_a_generic_500(wire: Wire) -> None:
    body = epicor_error(wire.get(AP, "APInvoices", **{"$filter": "VendorNumVendorID eq 'V0001'"}), 500)
    assert body["ErrorMessage"].startswith("An error occurred") and "Vendor" not in body["ErrorMessage"]
    # The same field may still be read.
    rows = wire.rows(AP, "APInvoices", **{"$select": "InvoiceNum,VendorNumVendorID", "$filter": "VendorNum eq 1"})
    assert {r["VendorNumVendorID"] for r in rows} == {"V0001"}
    wire.option(query_plan_errors=False)
    body = epicor_error(wire.get(AP, "APInvoices", **{"$filter": "VendorNumVendorID eq 'V0001'"}), 400)
    assert "VendorNumVendorID" in body["ErrorMessage"]


def test_display_fields_are_named_per_row_type_as_the_schema_names_them(wire: Wire) -> None:
    """InvcHeadRow carries the customer as CustomerCustID/CustomerName (S1); it has no CustNumCustID."""
    ar = "Erp.BO.ARInvoiceSvc"
    rows = wire.rows(ar, "ARInvoices", **{"$select": "InvoiceNum,CustNum,CustomerCustID,CustomerName",
                                          "$filter": "InvoiceNum eq 1002"})  # fmt: skip
    assert rows == [{"InvoiceNum": 1002, "CustNum": 3, "CustomerCustID": "C0003", "CustomerName": "Customer 3",
                     "RowMod": ""}]  # fmt: skip
    body = epicor_error(wire.get(ar, "ARInvoices", **{"$select": "InvoiceNum,CustNumCustID"}), 400)
    assert "Could not find a property named 'CustNumCustID'" in body["ErrorMessage"]
    # A vendor's display fields are not on an AR invoice, nor a customer's on an AP invoice.
    epicor_error(wire.get(ar, "ARInvoices", **{"$select": "VendorNumVendorID"}), 400)
    epicor_error(wire.get(AP, "APInvoices", **{"$select": "CustomerCustID"}), 400)
    # Like every display field, it can be read but not filtered on.
    epicor_error(wire.get(ar, "ARInvoices", **{"$filter": "CustomerCustID eq 'C0003'"}), 500)


# --- datetime_literal ----------------------------------------------------------------------------


def test_datetime_literals_must_carry_a_zone(wire: Wire) -> None:
    naive, zoned = "ChangeDate ge 2026-10-01T00:00:00", "ChangeDate ge 2026-10-01T00:00:00Z"
    body = epicor_error(wire.get(AP, "APInvoices", **{"$filter": naive}), 400)
    assert "'2026-10-01T00:00:00'" in body["ErrorMessage"]
    assert len(wire.rows(AP, "APInvoices", **{"$filter": zoned})) == 12
    assert wire.rows(
        AP, "APInvoices", **{"$filter": "ChangeDate gt 2026-10-01T02:00:00+03:00"}
    )  # 23:00 UTC the day before
    wire.option(datetime_literal="naive")
    epicor_error(wire.get(AP, "APInvoices", **{"$filter": zoned}), 400)
    assert len(wire.rows(AP, "APInvoices", **{"$filter": naive})) == 12
    wire.option(datetime_literal="any")
    assert len(wire.rows(AP, "APInvoices", **{"$filter": naive})) == len(
        wire.rows(AP, "APInvoices", **{"$filter": zoned})
    )


# --- duplicate_status and case_insensitive_keys --------------------------------------------------


def new_vendor(wire: Wire, vendor_id: str) -> httpx.Response:
    ds = wire.ds(VENDOR, "GetNewVendor", {"ds": {}})
    ds["Vendor"][0].update(VendorID=vendor_id, Name="Duplicate Test", TermsCode="N30")
    return wire.post(VENDOR, "Update", {"ds": ds})


def test_a_duplicate_is_a_409_that_says_duplicate(wire: Wire) -> None:
    body = epicor_error(new_vendor(wire, "V0001"), 409)
    assert body["ErrorType"] == "Ice.Common.DuplicateRecordException" and "duplicate" in body["ErrorMessage"].lower()
    wire.option(duplicate_status=400)
    body = epicor_error(new_vendor(wire, "V0001"), 400)
    assert body["ErrorType"] == "Ice.Common.BusinessObjectException" and "duplicate" in body["ErrorMessage"].lower()


def test_natural_keys_are_exact_unless_case_insensitive(wire: Wire) -> None:
    epicor_error(wire.get(VENDOR, "GetByVendID", vendorID="v0001 "), 404)
    assert new_vendor(wire, "v0001").status_code == 200  # a different vendor, by exact compare
    wire.option(case_insensitive_keys=True)
    assert wire.get(VENDOR, "GetByVendID", vendorID="v0002 ").json()["returnObj"]["Vendor"][0]["VendorNum"] == 2
    epicor_error(new_vendor(wire, "V0003 "), 409)
    invoice = wire.ds(AP, "GetNewAPInvHedInvoice", {"ds": {}, "cGroupID": "SEED01"})
    invoice["APInvHed"][0].update(VendorNum=1, InvoiceNum="inv-001-1")
    assert "Duplicate APInvHed" in epicor_error(wire.post(AP, "Update", {"ds": invoice}), 409)["ErrorMessage"]


# --- token_lifetime_s ------------------------------------------------------------------------------


def test_token_lifetime_is_the_option(wire: Wire) -> None:
    o = wire.sandbox.options
    token = httpx.post(f"{wire.root}/{o.instance}/TokenResource.svc/", headers={"username": "manager", "password": o.users["manager"]})  # fmt: skip
    assert token.json()["ExpiresIn"] == 3600
    wire.option(token_lifetime_s=60)
    token = httpx.post(f"{wire.root}/{o.instance}/TokenResource.svc/", headers={"username": "manager", "password": o.users["manager"]})  # fmt: skip
    assert token.json()["ExpiresIn"] == 60 and token.json()["TokenType"] == "Bearer"


# --- denied_services and scope_denial_status -----------------------------------------------------


def test_a_service_outside_the_key_scope_is_refused_by_name(wire: Wire) -> None:
    wire.option(denied_services=[CASH])
    body = epicor_error(wire.get(CASH, "CashRecs"), 403)
    assert body["ErrorType"] == "Ice.Common.UnauthorizedAccessException"
    assert CASH in body["ErrorMessage"] and "access scope of the API key" in body["ErrorMessage"]
    assert wire.rows(VENDOR, "Vendors", **{"$top": 1})  # other services work
    wire.option(scope_denial_status=401)
    epicor_error(wire.post(CASH, "GetNewCashHead", {"ds": {}, "groupID": "CASH01"}), 401)
    wire.option(denied_services=[])
    assert wire.rows(CASH, "CashRecs") == []


# --- full_row_updates ----------------------------------------------------------------------------


def test_an_update_sends_the_whole_row(wire: Wire) -> None:
    row = wire.read(VENDOR, vendorNum=4)["Vendor"][0]
    partial = {"Company": row["Company"], "VendorNum": 4, "Name": "Renamed", "RowMod": "U"}
    body = epicor_error(wire.post(VENDOR, "Update", {"ds": {"Vendor": [partial]}}), 400)
    assert "field VendorID is missing" in body["ErrorMessage"] and body["ErrorDetails"][0]["Field"] == "VendorID"
    saved = wire.ds(VENDOR, "Update", {"ds": {"Vendor": [{**row, "Name": "Renamed", "RowMod": "U"}]}})
    assert saved["Vendor"][0]["Name"] == "Renamed" and saved["Vendor"][0]["SysRevID"] > row["SysRevID"]
    wire.option(full_row_updates=False)
    partial["Name"] = "Renamed again"
    assert wire.ds(VENDOR, "Update", {"ds": {"Vendor": [partial]}})["Vendor"][0]["Name"] == "Renamed again"


# --- posted_read_only ----------------------------------------------------------------------------


def test_posted_records_are_read_only(wire: Wire) -> None:
    invoice = wire.read(AP, vendorNum=1, invoiceNum="INV-001-1")["APInvHed"][0]
    assert invoice["Posted"] is True  # seeded as posted
    change = {"ds": {"APInvHed": [{**invoice, "Description": "late note", "RowMod": "U"}]}}
    body = epicor_error(wire.post(AP, "Update", change), 400)
    assert "posted and can't be maintained" in body["ErrorMessage"]
    assert body["ErrorType"] == "Ice.Common.BusinessObjectException"
    # A cash receipt marked posted through the admin endpoint: its head and its lines refuse writes.
    ds = wire.ds(CASH, "GetNewCashHeadType", {"ds": {}, "groupID": "CASH01", "tranType": "PayInv"})
    ds = wire.ds(CASH, "GetCustomerInfo", {"custID": "C0002", "ds": ds})
    head = wire.call(CASH, "UpdateMaster", cash_master(ds, "CashHead"))["parameters"]["ds"]["CashHead"][0]
    marked = wire.http.post(f"{wire.root}/_sandbox/posted", json={"table": "CashHead", "keys": {"GroupID": "CASH01", "HeadNum": head["HeadNum"]}})  # fmt: skip
    assert marked.json() == {"changed": 1}
    dtl = wire.ds(
        CASH, "GetNewCashDtl", {"ds": {}, "groupID": "CASH01", "headNum": head["HeadNum"], "invoiceNum": 1002}
    )
    body = epicor_error(wire.post(CASH, "UpdateMaster", cash_master(dtl, "CashDtl")), 400)
    assert "Cash receipt" in body["ErrorMessage"] and "posted" in body["ErrorMessage"]
    # A posted payment (a generator parameter): adding a line to it is refused too.
    wire.sandbox.generate_payments(1, vendor_num=3, posted=True)
    paid = wire.read(PAY, headNum=1)
    line = wire.ds(PAY, "GetNewAPTran", {"ds": paid, "headNum": 1, "apTranNo": 0, "invoiceNum": "INV-003-1"})
    body = epicor_error(wire.post(PAY, "Update", {"ds": line}), 400)
    assert body["ErrorMessage"].startswith("Payment HeadNum 1 has been posted")
    epicor_error(wire.post(PAY, "DeleteByID", {"headNum": 1}), 400)  # nor can it be deleted
    assert wire.read(PAY, headNum=1)["CheckHed"][0]["Posted"] is True
    wire.option(posted_read_only=False)
    assert wire.ds(AP, "Update", change)["APInvHed"][0]["Description"] == "late note"


def cash_master(ds: dict[str, Any], table: str) -> dict[str, Any]:
    return {"ds": ds, "ipGroupID": "CASH01", "ipTableName": table, "updGroupTotals": True, "ipIgnoreValidation": 0}


# --- AP payments -----------------------------------------------------------------------------------


def test_ap_payment_sequence_from_the_evidence(wire: Wire) -> None:
    ds = wire.ds(PAY, "CreateNewCheckHed", {"pcGroupID": "CHK01", "ds": {}})
    head = ds["CheckHed"][0]
    assert head["HeadNum"] > 0 and head["RowMod"] == ""  # CreateNewCheckHed saved the header
    ds = wire.ds(PAY, "OnChangeVendor", {"pcVendorID": "V0001", "ds": ds})
    ds = wire.ds(PAY, "OnChangeManualPrint", {"plManualPrint": True, "ds": ds})
    ds["CheckHed"][0].update(CheckNum=10023, CheckDate="2026-11-20T00:00:00", BankAcctID="MAIN", RowMod="U")
    ds = wire.ds(PAY, "Update", {"ds": ds})
    assert (ds["CheckHed"][0]["CheckNum"], ds["CheckHed"][0]["BankAcctID"]) == (10023, "MAIN")
    epicor_error(wire.post(PAY, "GetNewAPTran", {"ds": {}, "headNum": head["HeadNum"], "apTranNo": 0, "invoiceNum": "INV-001-1"}), 400)  # fmt: skip
    for invoice in ("INV-001-1", "INV-001-2"):  # two invoice lines, both APTranNo 0
        tran = wire.ds(
            PAY, "GetNewAPTran", {"ds": ds, "headNum": head["HeadNum"], "apTranNo": 0, "invoiceNum": invoice}
        )
        assert tran["APTran"][-1]["CheckNum"] == 10023 and tran["APTran"][-1]["VendorNum"] == 1
        tran = wire.ds(PAY, "OnChangeInvoiceNum", {"pcInvoiceNum": invoice, "pcChangeExchangeRateResponse": "Yes", "ds": tran})  # fmt: skip
        tran = wire.ds(PAY, "Update", {"ds": tran})
        ds = {"CheckHed": tran["CheckHed"]}
    lines = wire.read(PAY, headNum=head["HeadNum"])["APTran"]
    assert sorted((t["APTranNo"], t["InvoiceNum"]) for t in lines) == [(0, "INV-001-1"), (0, "INV-001-2")]
    assert all(t["TranAmt"] > 0 for t in lines)
    assert (
        wire.rows(AP, "APInvoices", **{"$filter": "VendorNum eq 1 and InvoiceNum eq 'INV-001-1'"})[0]["InvoiceBal"] == 0
    )
    # UpdateExt finds a line by its whole key, APTranNo 0 included: an update, not a second line.
    ext = {"ds": {"APTran": [{**lines[0], "DiscAmt": 1}]}, "continueProcessingOnError": True,
           "rollbackParentOnChildError": False}  # fmt: skip
    assert wire.call(PAY, "UpdateExt", ext)["parameters"]["errorsOccurred"] is False
    assert len(wire.read(PAY, headNum=head["HeadNum"])["APTran"]) == 2


def test_check_fields_are_kept_only_on_manual_checks(wire: Wire) -> None:
    def save_check(manual: bool) -> dict[str, Any]:
        ds = wire.ds(PAY, "CreateNewCheckHed", {"pcGroupID": "CHK01", "ds": {}})
        ds = wire.ds(PAY, "OnChangeVendor", {"pcVendorID": "V0002", "ds": ds})
        ds["CheckHed"][0].update(CheckNum=777, CheckDate="2026-11-21T00:00:00", BankAcctID="MAIN", ManualPrint=manual, RowMod="U")  # fmt: skip
        out: dict[str, Any] = wire.ds(PAY, "Update", {"ds": ds})["CheckHed"][0]
        return out

    blanked = save_check(False)
    assert (blanked["CheckNum"], blanked["CheckDate"], blanked["BankAcctID"]) == (0, None, "")
    assert save_check(True)["CheckNum"] == 777
    wire.option(entry_rules=False)
    assert save_check(False)["CheckNum"] == 777


def test_the_check_amount_is_the_sum_of_its_payment_lines(wire: Wire) -> None:
    """No public caller writes CheckAmt/DocCheckAmt: a written one is not kept, the lines decide."""
    ds = wire.ds(PAY, "CreateNewCheckHed", {"pcGroupID": "CHK01", "ds": {}})
    ds = wire.ds(PAY, "OnChangeVendor", {"pcVendorID": "V0001", "ds": ds})
    ds = wire.ds(PAY, "OnChangeManualPrint", {"plManualPrint": True, "ds": ds})
    ds["CheckHed"][0].update(CheckNum=4242, CheckAmt=999, DocCheckAmt=999, RowMod="U")
    head = wire.ds(PAY, "Update", {"ds": ds})["CheckHed"][0]
    assert (head["CheckAmt"], head["DocCheckAmt"]) == (0, 0)
    for invoice, paid in (("INV-001-1", 300), ("INV-001-2", 125.5)):
        tran = wire.ds(PAY, "GetNewAPTran", {"ds": {"CheckHed": [head]}, "headNum": head["HeadNum"], "apTranNo": 0,
                                             "invoiceNum": invoice})  # fmt: skip
        tran = wire.ds(PAY, "OnChangeInvoiceNum", {"pcInvoiceNum": invoice, "pcChangeExchangeRateResponse": "Yes",
                                                   "ds": tran})  # fmt: skip
        tran = wire.ds(PAY, "OnChangeDocTranAmt", {"pdDocTranAmt": paid, "ds": tran})
        wire.ds(PAY, "Update", {"ds": tran})
    saved = wire.read(PAY, headNum=head["HeadNum"])["CheckHed"][0]
    assert (saved["CheckAmt"], saved["DocCheckAmt"]) == (425.5, 425.5)


# --- AP invoices -----------------------------------------------------------------------------------


def test_ap_invoice_amount_is_the_sum_of_its_lines(wire: Wire) -> None:
    ds = wire.ds(AP, "GetNewAPInvHedInvoice", {"ds": {}, "cGroupID": "SEED01"})
    ds["APInvHed"][0]["TermsCode"] = "N30"
    ds = wire.ds(AP, "ChangeInvoiceDateEx", {"ProposedInvoiceDate": "2026-11-20", "recalcAmts": True, "ds": ds})
    ds = wire.ds(AP, "ChangeVendorID", {"ProposedVendorID": "V0002", "confirmCheck": True, "ds": ds})
    hed = ds["APInvHed"][0]
    assert (hed["VendorNum"], hed["TermsCode"], hed["CurrencyCode"]) == (2, "N45", "USD")  # from the vendor
    assert hed["DueDate"] == "2027-01-04T00:00:00"  # re-derived from the vendor's terms
    ds = wire.ds(AP, "ChangeInvoiceVendorAmt", {"ProposedInvoiceVendorAmt": 250.75, "ds": ds})
    ds["APInvHed"][0].update(InvoiceNum="INV-9001", InvoiceAmt=999)  # a written InvoiceAmt is not kept
    saved = wire.ds(AP, "Update", {"ds": ds})["APInvHed"][0]
    assert (saved["InvoiceAmt"], saved["DocInvoiceVendorAmt"], saved["ScrDocInvoiceVendorAmt"]) == (0, 250.75, 250.75)
    lines = wire.ds(AP, "GetNewAPInvDtlMiscellaneous", {"ds": {}, "iVendorNum": 2, "cInvoiceNum": "INV-9001"})
    lines["APInvDtl"][0].update(Description="Freight", VendorQty=1, UnitCost=200.75, ExtCost=200.75)
    master = {"ds": lines, "cGroupID": "SEED01", "cTableName": "APInvDtl", "runChkCPay": False,
              "runChkBankRef": False, "runChkRevChrg": False, "suppressUserPrompts": True}  # fmt: skip
    assert wire.call(AP, "UpdateMaster", master)["parameters"]["lUpdateRan"] is True
    lines = wire.ds(AP, "GetNewAPInvDtlMiscellaneous", {"ds": {}, "iVendorNum": 2, "cInvoiceNum": "INV-9001"})
    lines["APInvDtl"][0].update(Description="Fuel", VendorQty=1, UnitCost=50, ExtCost=50)
    wire.call(AP, "UpdateMaster", {**master, "ds": lines})
    hed = wire.read(AP, vendorNum=2, invoiceNum="INV-9001")["APInvHed"][0]
    assert (hed["InvoiceAmt"], hed["InvoiceBal"], hed["InvoiceVendorAmt"]) == (250.75, 250.75, 250.75)


def test_lenient_entry_rules_keep_the_old_invoice_amount(wire: Wire) -> None:
    wire.option(entry_rules=False)
    ds = wire.ds(AP, "GetNewAPInvHedInvoice", {"ds": {}, "cGroupID": "SEED01"})
    ds = wire.ds(AP, "ChangeVendorID", {"ProposedVendorID": "V0002", "confirmCheck": True, "ds": ds})
    ds = wire.ds(AP, "ChangeInvoiceVendorAmt", {"ProposedInvoiceVendorAmt": 80, "ds": ds})
    ds["APInvHed"][0]["InvoiceNum"] = "INV-9002"
    assert wire.ds(AP, "Update", {"ds": ds})["APInvHed"][0]["InvoiceAmt"] == 80


# --- cash receipts ---------------------------------------------------------------------------------


def test_cash_receipt_sequence_from_the_evidence(wire: Wire) -> None:
    ds = wire.ds(CASH, "GetNewCashHeadType", {"ds": {}, "groupID": "CASH01", "tranType": "PayInv"})
    ds = wire.ds(CASH, "GetCustomerInfo", {"custID": "C0004", "ds": ds})
    assert ds["CashHead"][0]["CustNum"] == 4 and ds["CashHead"][0]["TranType"] == "PayInv"
    ds["CashHead"][0].update(CheckRef="EFT-77", TranAmt=120, DocTranAmt=120)
    head = wire.ds(CASH, "Update", {"ds": ds})["CashHead"][0]
    dtl = wire.ds(CASH, "GetNewCashDtl", {"ds": {"CashHead": [head]}, "groupID": "CASH01", "headNum": head["HeadNum"], "invoiceNum": 1003})  # fmt: skip
    bad = wire.post(CASH, "GetDtlInvoiceInfo", {"invoiceNum": 1002, "ds": dtl})  # 1002 belongs to customer 3
    assert "not for customer 4" in epicor_error(bad, 400)["ErrorMessage"]
    dtl = wire.ds(CASH, "GetDtlInvoiceInfo", {"invoiceNum": 1003, "ds": dtl})
    assert dtl["CashDtl"][0]["InvoiceBal"] == 575
    dtl = wire.ds(CASH, "GetDtlTranAmtInfo", {"docTranAmt": 120, "docWriteOffAmount": 0, "ds": dtl})
    result = wire.call(CASH, "UpdateMaster", cash_master({"CashDtl": dtl["CashDtl"]}, "CashDtl"))
    totals = result["parameters"]
    assert totals["opUpdateRan"] is True and (totals["opTotalCashReceived"], totals["opTotalApplied"]) == (120, 120)
    ar = wire.rows("Erp.BO.ARInvoiceSvc", "ARInvoices", **{"$filter": "InvoiceNum eq 1003"})[0]
    assert ar["InvoiceBal"] == pytest.approx(575 - 120)
    full = wire.read(CASH, groupID="CASH01", headNum=head["HeadNum"])
    assert [(d["InvoiceNum"], d["TranAmt"]) for d in full["CashDtl"]] == [(1003, 120.0)]
    assert (full["CashHead"][0]["AppliedAmt"], full["CashHead"][0]["UnAppliedAmt"]) == (120, 0)


# --- faults still work on the strict sandbox -----------------------------------------------------


def test_faults_still_work(wire: Wire) -> None:
    wire.http.post(f"{wire.root}/_sandbox/faults", json={"rate_503": 1.0, "retry_after_s": 2})
    response = wire.get(VENDOR, "Vendors")
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    wire.http.post(f"{wire.root}/_sandbox/faults", json={"rate_503": 0.0})
    assert wire.rows(VENDOR, "Vendors", **{"$top": 1})
