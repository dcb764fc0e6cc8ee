"""The Kinetic sandbox served over real HTTP (uvicorn on a loopback port) for client tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from ml_connector.connections import EpicorSettings
from ml_connector.sandbox.kinetic import Faults, KineticSandbox, SandboxOptions
from ml_connector.secrets import Secret

from ..sftp.sshd import free_port


@dataclass
class Running:
    sandbox: KineticSandbox
    url: str

    def settings(self, **overrides: Any) -> EpicorSettings:
        o = self.sandbox.options
        base: dict[str, Any] = dict(
            url=f"{self.url}/{o.instance}",
            company=o.company,
            username="manager",
            api_key=Secret(o.api_key),
            password=Secret(o.users["manager"]),
            auth="basic",
            timeout_s=10.0,
        )
        base.update(overrides)
        return EpicorSettings(**base)


def serve(options: SandboxOptions) -> Iterator[Running]:
    """Start a seeded sandbox with ``options`` on a loopback port; stop it afterwards."""
    sb = KineticSandbox(options, Faults(seed=7))
    sb.seed()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(sb.app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("sandbox did not start")
        time.sleep(0.01)
    yield Running(sb, f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(timeout=10)


# Transitional (issue 13): the current client predates the strict sandbox. Each test it drives gets
# the lenient value of only the strict options it is not yet fit for; the client rewrite deletes
# these entries. Keys: "path::test" (parameters ignored), a test file, or a folder ending in "/".
LENIENT_FOR: dict[str, tuple[str, ...]] = {
    # The client's call() POSTs GetByID/GetList/GetRows.
    "tests/kinetic/test_client.py::test_lost_response_on_every_write_is_settled_by_lookup": ("post_reads",),
    "tests/kinetic/test_client.py::test_paging_while_records_change_neither_skips_nor_repeats": ("post_reads",),
    "tests/kinetic/test_client.py::test_upsert_updates_existing_and_validation_errors_are_record_errors": ("post_reads",),
    "tests/kinetic/test_recipes.py::test_ap_invoice_upsert_survives_lost_responses": ("post_reads",),
    # The cash recipe omits UpdateMaster's updGroupTotals/ipIgnoreValidation.
    "tests/kinetic/test_recipes.py::test_cash_receipt_upsert_and_idempotent_application": ("strict_parameters", "post_reads"),
    # The payment recipe calls GetNewAPTran with an empty ds and no apTranNo, OnChangeInvoiceNum
    # without pcChangeExchangeRateResponse, and sets CheckNum without ManualPrint.
    "tests/kinetic/test_recipes.py::test_ap_payment_recipe_survives_lost_responses_and_replays": (
        "strict_parameters", "post_reads", "entry_rules"),
    # The ChangeDate cursor writes the literal without a zone (and the v1 datetime'…' form).
    "tests/kinetic/test_recipes.py::test_change_date_cursor_in_each_literal_form": ("datetime_literal",),
    # Reads APTrans with a $filter on a child column.
    "tests/kinetic/test_recipes.py::test_run_time_options_and_generators": ("child_set_filter",),
    # Flow runs (measured per option with the embedded SFTP target, so no OpenSSH noise):
    # vendor lookups read by POST GetByID...
    "tests/flows/test_inbound.py::test_vendor_csv_creates_and_updates_then_archives": ("post_reads",),
    "tests/flows/test_outbound.py::test_vendors_to_csv_then_only_changes_then_nothing": ("post_reads",),
    "tests/flows/test_faults.py": ("post_reads",),
    "tests/flows/test_crash.py": ("post_reads",),
    "tests/ops/test_serve.py::test_two_serve_processes_never_run_a_slot_twice_and_expose_metrics": ("post_reads",),
    # ...the cash recipe omits UpdateMaster parameters...
    "tests/flows/test_inbound.py::test_820_to_cash_receipts_with_997_and_duplicate_isa13": (
        "post_reads", "strict_parameters"),
    "tests/flows/test_inbound.py::test_820_with_a_bad_set_rejects_that_set_in_the_997_and_posts_the_rest": (
        "post_reads", "strict_parameters"),
    # ...the payment recipe (above); both payment flows read APTrans with a $filter on a child column...
    "tests/flows/test_inbound.py::test_820_to_ap_payments_and_partner_997_marks_our_outbound_file": (
        "post_reads", "strict_parameters", "entry_rules", "child_set_filter"),
    "tests/flows/test_outbound.py::test_payments_to_x12_820_with_persisted_control_numbers": ("child_set_filter",),
    # ...and the invoice recipe writes InvoiceAmt and updates a seeded invoice, which is posted.
    "tests/flows/test_inbound.py::test_invoice_confirmations_csv_to_ap_invoices": (
        "post_reads", "entry_rules", "posted_read_only"),
}  # fmt: skip


def lenient_options(nodeid: str) -> tuple[str, ...]:
    """The strict options a test still needs lenient (see LENIENT_FOR)."""
    test = nodeid.split("[", 1)[0]
    found: list[str] = []
    for key, names in LENIENT_FOR.items():
        if test == key or test.startswith(key + "::") or (key.endswith("/") and test.startswith(key)):
            found.extend(names)
    return tuple(found)


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[Running]:
    """The sandbox the client tests use: strict, but for the options LENIENT_FOR names."""
    options = SandboxOptions(api_key="sandbox-key-Q7", users={"manager": "mgr-pass-Z4"})
    lenient = SandboxOptions.lenient()
    for name in lenient_options(request.node.nodeid):
        setattr(options, name, getattr(lenient, name))
    yield from serve(options)


@pytest.fixture
def strict_sandbox() -> Iterator[Running]:
    """The sandbox as it starts by default: every strict rule on."""
    yield from serve(SandboxOptions(api_key="sandbox-key-Q7", users={"manager": "mgr-pass-Z4"}))


async def no_sleep(_s: float) -> None:
    """Injected into the client: backoff takes no wall time in tests."""
