"""Fast unit fixtures: a run on a SQLite file (no network), a scripted Kinetic, a fixed clock.

The fakes stand in for the ports (``KineticPort``, ``PartnerFiles``) only here; the same
decisions are tested end to end against the sandbox and real SFTP servers in ``tests/flows``.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ml_connector.config import parse_flows
from ml_connector.errors import RecordError, UnknownOutcomeError
from ml_connector.flows.context import RunContext
from ml_connector.flows.inbound import InboundRun
from ml_connector.kinetic.client import KineticOptions
from ml_connector.secrets import Keyring, generate_key
from ml_connector.store import Store

FIXED = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
# (entity set, table, the fields GetByID is called with)
SETS = {"Erp.BO.VendorSvc": ("Vendors", "Vendor", ("VendorNum",)),
        "Erp.BO.APInvoiceSvc": ("APInvoices", "APInvHed", ("VendorNum", "InvoiceNum"))}  # fmt: skip


class FakeKinetic:
    """Vendors and AP invoice headers in memory, with scripted refusals and lost answers.

    Filters are not evaluated: the recipes index what a lookup returns by natural key, so
    returning every row of the set is what a permissive server would do for these tests.
    """

    options = KineticOptions()

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {"Vendors": [], "APInvoices": []}
        self.calls: list[tuple[str, str]] = []  # (method, VendorID or key)
        self.refuse: dict[str, Exception] = {}  # VendorID -> raised by Update
        self.lose_answer: dict[str, bool] = {}  # VendorID -> lose Update's answer (True: after it landed)

    def add_vendor(self, vendor_id: str, **fields: Any) -> dict[str, Any]:
        """A vendor already in Kinetic."""
        row = {"VendorNum": len(self.rows["Vendors"]) + 1, "VendorID": vendor_id, "SysRevID": 1, **fields}
        self.rows["Vendors"].append(row)
        return row

    async def query(self, service: str, entity_set: str, *, filter: str | None = None,
                    select: Sequence[str] | None = None, orderby: str | None = None, top: int = 100,
                    skip: int | None = None, expand: Sequence[str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
        self.calls.append(("query", entity_set))
        return copy.deepcopy(self.rows[entity_set][skip or 0 :][:top])

    async def query_all(self, service: str, entity_set: str, *, filter: str | None, orderby: str,
                        select: Sequence[str] | None = None, expand: Sequence[str] | None = None,
                        expect: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
        self.calls.append(("query_all", entity_set))
        return copy.deepcopy(self.rows[entity_set])

    async def read(self, service: str, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        entity_set, table, keys = SETS[service]
        self.calls.append((method, entity_set))
        by = dict(zip(keys, params.values(), strict=True))
        rows = [copy.deepcopy(r) for r in self.rows[entity_set] if all(r.get(k) == v for k, v in by.items())]
        if not rows:
            raise RecordError(f"{table} {by} not found")
        return {"returnObj": {table: rows}}

    async def call(self, service: str, method: str, body: dict[str, Any], *, write: bool = False) -> dict[str, Any]:
        if method == "GetNewVendor":
            self.calls.append((method, ""))
            return {"parameters": {"ds": {"Vendor": [{"RowMod": "A"}]}}}
        if method != "Update" or service != "Erp.BO.VendorSvc":
            raise AssertionError(f"unexpected call {service}/{method}")
        row = dict(body["ds"]["Vendor"][-1])
        vendor_id = str(row["VendorID"])
        self.calls.append((f"Update {row.get('RowMod')}", vendor_id))
        if vendor_id in self.refuse:
            raise self.refuse[vendor_id]
        lost = self.lose_answer.get(vendor_id)
        if lost is False:  # the request never reached the database
            raise UnknownOutcomeError(f"vendor {vendor_id}: no answer")
        if row.get("RowMod") == "U":
            saved = next(r for r in self.rows["Vendors"] if r["VendorNum"] == row["VendorNum"])
            saved.update({k: v for k, v in row.items() if k != "RowMod"}, SysRevID=saved["SysRevID"] + 1)
        else:
            saved = self.add_vendor(vendor_id, **{k: v for k, v in row.items() if k not in ("RowMod", "VendorID")})
        if lost:
            del self.lose_answer[vendor_id]  # once: the lookup that settles it sees the row
            raise UnknownOutcomeError(f"vendor {vendor_id}: the answer was lost")
        return {"parameters": {"ds": {"Vendor": [copy.deepcopy(saved)]}}}

    async def extract(self, service: str, entity_set: str, *, cursor: str, after: Any, page_size: int = 100,
                      select: list[str] | None = None, extra_filter: str | None = None,
                      tiebreak: str | Sequence[str] | None = "SysRevID", after_tiebreak: Any = None,
                      expand: Sequence[str] | None = None) -> AsyncIterator[list[dict[str, Any]]]:  # fmt: skip
        yield copy.deepcopy(self.rows[entity_set])


FLOWS = """
flows:
  vendors-in:
    direction: inbound
    epicor: kinetic
    entity: vendors
    sftp: sftp
    folder: /in
    concurrency: {concurrency}
    format: {{type: csv}}
  invoices-in:
    direction: inbound
    epicor: kinetic
    entity: ap-invoices
    sftp: sftp
    folder: /in
    constants: {{GroupID: G1}}
    format: {{type: csv}}
  acks-in:
    direction: inbound
    epicor: kinetic
    entity: acknowledgments
    sftp: sftp
    folder: /acks
    format: {{type: x12}}
  payments-in:
    direction: inbound
    epicor: kinetic
    entity: cash-receipts
    sftp: sftp
    folder: /in820
    ack_folder: /acks-out
    error_folder: /error
    constants: {{GroupID: G1}}
    format: {{type: x12, ack: "{ack}"}}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'unit.db'}")
    yield s
    s.close()


@pytest.fixture
def make_run(store: Store, tmp_path: Path) -> Any:
    """An inbound run of one of FLOWS with a started run row and a fixed clock."""

    def make(name: str, concurrency: int = 4, ack: str = "997") -> InboundRun:
        flow = parse_flows(FLOWS.format(concurrency=concurrency, ack=ack)).flows[name]
        ctx = RunContext(store=store, keyring=Keyring((generate_key(),), source="test"), staging=tmp_path / "staging",
                         clock=lambda: FIXED)  # fmt: skip
        assert flow.direction == "inbound"
        run = InboundRun(ctx, name, flow)  # type: ignore[arg-type]
        run.run_id = store.ledger.start_run(name, "inbound", "test")
        return run

    return make
