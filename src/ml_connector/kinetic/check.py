"""The fit check: does a real Kinetic instance behave the way this connection is set up for?

``ml-connector connections check NAME`` runs it. Read-only by default: for each entity it reads
one page and asks the instance what the sandbox options model (reference/kinetic-evidence.md):

- which services the API key's access scope allows (one cheap read per service);
- the row cap (a page asked for more rows than the cap, against ``/$count``) and whether
  ``@odata.nextLink`` appears;
- which ``Edm.DateTimeOffset`` literal form ``$filter`` accepts (with a zone, without);
- the token lifetime (token auth);
- the method signatures in the service's ``$metadata``, against what the recipes send;
- whether the fields the flows' mappings name exist (``$select`` them).

It ends with findings and the settings to use. ``write_test`` (a group ID, only when asked)
creates one draft AP invoice in that group and deletes it again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from defusedxml import ElementTree  # type: ignore[import-untyped]

from ..errors import MLConnectorError, ScopeDeniedError, UsageError
from . import odata
from .client import KineticClient
from .entities import ENTITIES, Entity

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
PROBE_TOP = 500  # more than Kinetic's default cap of 100: a capped instance answers with fewer


@dataclass
class Finding:
    """One line of the report: what was checked, what was seen, what to set."""

    topic: str
    result: str
    ok: bool = True
    setting: str | None = None  # e.g. "--datetime-literal naive"


@dataclass
class CheckReport:
    """Everything the fit check saw."""

    findings: list[Finding] = field(default_factory=list)
    allowed_services: list[str] = field(default_factory=list)
    denied_services: list[str] = field(default_factory=list)
    row_cap: int | None = None
    next_link: bool | None = None
    datetime_literal: str | None = None
    token_lifetime_s: float | None = None
    methods: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # service -> method -> params
    missing_fields: dict[str, list[str]] = field(default_factory=dict)

    def add(self, topic: str, result: str, *, ok: bool = True, setting: str | None = None) -> None:
        """Record one finding."""
        self.findings.append(Finding(topic, result, ok, setting))

    @property
    def settings(self) -> list[str]:
        """The settings the findings ask for, once each."""
        return list(dict.fromkeys(f.setting for f in self.findings if f.setting))

    @property
    def ok(self) -> bool:
        """No finding is a problem."""
        return all(f.ok for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "settings": self.settings, "ok": self.ok}


async def fit_check(k: KineticClient, *, entities: Sequence[str] | None = None,
                    fields: Mapping[str, Sequence[str]] | None = None,
                    write_test: str | None = None) -> CheckReport:  # fmt: skip
    """Probe the instance behind ``k`` for ``entities`` (default: every entity the registry knows)."""
    report = CheckReport()
    names = list(entities or [e for e in ENTITIES if ENTITIES[e].recipe_module])
    for name in list(names):
        for lookup_entity, _ in ENTITIES[name].lookups.values():
            names.append(lookup_entity)
        if name == "cash-receipts":
            names.append("ar-invoices")
    chosen = [ENTITIES[n] for n in dict.fromkeys(names)]
    allowed = await _scope(k, chosen, report)
    usable = [e for e in chosen if e.service in allowed]
    if usable:
        await _row_cap(k, usable, report)
    dated = next((e for e in usable if "ChangeDate" in e.cursors), None)
    if dated is not None:
        await _datetime_literal(k, dated, report)
    else:
        report.add("datetime literal", "not checked: no allowed entity has ChangeDate", ok=True)
    _token(k, report)
    for e in usable:
        if e.recipe_module:
            await _methods(k, e, report)
    for e in usable:
        wanted = list((fields or {}).get(e.name, ()))
        if wanted:
            await _fields(k, e, wanted, report)
    if write_test:
        await _write_test(k, write_test, report)
    return report


async def _scope(k: KineticClient, chosen: list[Entity], report: CheckReport) -> set[str]:
    allowed: set[str] = set()
    for e in chosen:
        if e.service in allowed or e.service in report.denied_services:
            continue
        try:
            await k.query(e.service, e.entity_set, top=1)
        except ScopeDeniedError as exc:
            report.denied_services.append(e.service)
            report.add(f"scope {e.service}", f"refused: {exc}", ok=False,
                       setting=f"add {e.service} to the API key's access scope")  # fmt: skip
            continue
        allowed.add(e.service)
        report.allowed_services.append(e.service)
        report.add(f"scope {e.service}", "allowed")
    return allowed


async def _row_cap(k: KineticClient, usable: list[Entity], report: CheckReport) -> None:
    """Ask for more rows than any cap on the largest entity set; fewer back than it holds is the cap."""
    counts = {e.name: await k.count(e.service, e.entity_set) for e in usable}
    biggest = max(usable, key=lambda e: counts[e.name])
    total = counts[biggest.name]
    path = f"{k.odata_base}/{biggest.service}/{biggest.entity_set}"
    # The client's own query never asks above its page cap; this probe must, so it goes direct.
    data = await k.request("GET", path, params={"$top": PROBE_TOP, "$orderby": f"{biggest.order_key[0]} asc"})
    got = len(data.get("value", []))
    report.next_link = bool(data.get("@odata.nextLink"))
    report.add("@odata.nextLink", "present (followed)" if report.next_link else "absent (the client pages itself)")
    if total > got:
        report.row_cap = got
        setting = None if got >= k.options.page_cap else f"page size {got} (KineticOptions.page_cap)"
        report.add("row cap", f"{got} rows per page ({biggest.entity_set} holds {total}; asked {PROBE_TOP})",
                   ok=setting is None, setting=setting)  # fmt: skip
    else:
        report.add("row cap", f"none seen: {biggest.entity_set} returned all {total} rows; lookups page under "
                   f"{k.options.page_cap} anyway")  # fmt: skip


async def _datetime_literal(k: KineticClient, e: Entity, report: CheckReport) -> None:
    accepted = []
    for form, text in (("zoned", "2000-01-01T00:00:00Z"), ("naive", "2000-01-01T00:00:00")):
        try:
            await k.query(e.service, e.entity_set, filter=f"ChangeDate gt {text}", select=list(e.order_key), top=1)
        except MLConnectorError:
            continue
        accepted.append(form)
    if not accepted:
        report.add("datetime literal", f"{e.entity_set} refused both ChangeDate literal forms", ok=False,
                   setting="use the SysRevID cursor")  # fmt: skip
        return
    report.datetime_literal = accepted[0]
    current = k.datetime_literal
    fits = current in accepted
    report.add("datetime literal", f"accepted: {', '.join(accepted)}; this connection sends {current}", ok=fits,
               setting=None if fits else f"--datetime-literal {accepted[0]}")  # fmt: skip


def _token(k: KineticClient, report: CheckReport) -> None:
    if k.settings.auth != "token":
        report.add("token lifetime", "basic auth: no token to refresh")
        return
    report.token_lifetime_s = k.auth.lifetime_s
    short = report.token_lifetime_s is not None and report.token_lifetime_s < 2 * k.settings.token_refresh_margin_s
    report.add("token lifetime", f"{report.token_lifetime_s:.0f} s" if report.token_lifetime_s else "unknown",
               ok=True, setting="a smaller token_refresh_margin_s" if short else None)  # fmt: skip


async def _methods(k: KineticClient, e: Entity, report: CheckReport) -> None:
    try:
        text = await k.metadata(e.service)
        root = ElementTree.fromstring(text.encode())
    except MLConnectorError as exc:  # not found, refused, unreachable: the check goes on
        report.add(f"methods {e.service}", f"$metadata not readable ({exc}); signatures not checked", ok=True)
        return
    except ElementTree.ParseError as exc:
        report.add(f"methods {e.service}", f"$metadata is not CSDL XML ({exc})", ok=True)
        return
    seen: dict[str, list[str]] = {}
    for tag in ("Action", "Function"):
        for node in root.iter(f"{EDM}{tag}"):
            seen[str(node.get("Name"))] = [str(p.get("Name")) for p in node.iter(f"{EDM}Parameter")]
    report.methods[e.service] = seen
    if not seen:
        report.add(f"methods {e.service}", "$metadata lists no methods; signatures not checked")
        return
    problems = []
    sent = e.recipe_methods()
    for method, params in sent.items():
        if method not in seen:
            problems.append(f"{method} missing")
            continue
        extra = [p for p in seen[method] if p not in params]
        lacking = [p for p in params if p not in seen[method]]
        if extra or lacking:
            problems.append(f"{method}({', '.join(seen[method])}) differs from what is sent ({', '.join(params)})")
    report.add(f"methods {e.service}", "; ".join(problems) if problems else
               f"all {len(sent)} methods the {e.name} recipe calls, with the parameters it sends",
               ok=not problems)  # fmt: skip


async def _fields(k: KineticClient, e: Entity, wanted: list[str], report: CheckReport) -> None:
    names = [w for w in dict.fromkeys(wanted) if w != "RowMod"]
    try:
        await k.query(e.service, e.entity_set, select=names, top=1)
        report.add(f"fields {e.name}", f"all {len(names)} mapped fields exist")
        return
    except MLConnectorError:
        pass
    missing = []
    for name in names:  # the set was refused: find which field (Kinetic names the first only)
        try:
            await k.query(e.service, e.entity_set, select=[name], top=1)
        except MLConnectorError:
            missing.append(name)
    report.missing_fields[e.name] = missing
    report.add(f"fields {e.name}", f"not on {e.entity_set}: {', '.join(missing)}", ok=not missing,
               setting="fix the flow's mapping" if missing else None)  # fmt: skip


WRITE_TESTS = ("ap-invoices", "ap-payments")


def write_test_target(value: str) -> tuple[str, str]:
    """``GROUP`` (an AP invoice group) or ``ENTITY:GROUP`` for ``--write-test``."""
    entity, sep, group = value.partition(":")
    if not sep:
        return "ap-invoices", value
    if entity not in WRITE_TESTS:
        raise UsageError(f"--write-test {value!r}: ENTITY is one of {', '.join(WRITE_TESTS)} (or give GROUP alone)")
    if not group:
        raise UsageError(f"--write-test {value!r}: give the group after the colon")
    return entity, group


async def _write_test(k: KineticClient, target: str, report: CheckReport) -> None:
    """One draft created in the group and deleted (only when asked): an AP invoice or an AP payment."""
    entity, group = write_test_target(target)
    if entity == "ap-payments":
        await _write_test_payment(k, group, report)
        return
    svc = ENTITIES["ap-invoices"].service
    vendors = await k.query(ENTITIES["vendors"].service, "Vendors", select=["VendorNum", "VendorID"],
                            orderby="VendorNum asc", top=1)  # fmt: skip
    if not vendors:
        report.add("write test", "no vendor to draft an invoice for", ok=False)
        return
    number = f"MLC-FIT-{int(time.time())}"
    try:
        ds = (await k.call(svc, "GetNewAPInvHedInvoice", {"ds": {}, "cGroupID": group}))["parameters"]["ds"]
        ds["APInvHed"][-1]["InvoiceNum"] = number
        ds = (await k.call(svc, "ChangeVendorID", {"ProposedVendorID": vendors[0]["VendorID"], "confirmCheck": True,
                                                   "ds": ds}))["parameters"]["ds"]  # fmt: skip
        await k.call(svc, "Update", {"ds": ds}, write=True)
        await k.call(svc, "DeleteByID", {"vendorNum": vendors[0]["VendorNum"], "invoiceNum": number}, write=True)
    except MLConnectorError as exc:
        report.add("write test", f"group {group}: {exc}", ok=False)
        return
    left = await k.query(svc, "APInvoices", filter=odata.compare("InvoiceNum", "eq", number), top=1)
    report.add("write test", f"group {group}: draft AP invoice {number} created and deleted", ok=not left)


async def _write_test_payment(k: KineticClient, group: str, report: CheckReport) -> None:
    """``CreateNewCheckHed`` saves an empty payment header at once (the recipe's first call); delete it by HeadNum."""
    entity = ENTITIES["ap-payments"]
    try:
        ds = await k.call(entity.service, "CreateNewCheckHed", {"pcGroupID": group, "ds": {}}, write=True)
        head_num = int(((ds.get("parameters") or {}).get("ds") or {}).get("CheckHed", [{}])[0].get("HeadNum") or 0)
        if not head_num:
            report.add("write test", f"group {group}: CreateNewCheckHed returned no HeadNum", ok=False)
            return
        await k.call(entity.service, "DeleteByID", {"headNum": head_num}, write=True)
    except MLConnectorError as exc:
        report.add("write test", f"group {group}: {exc}", ok=False)
        return
    left = await k.query(entity.service, entity.entity_set, filter=odata.compare("HeadNum", "eq", head_num), top=1)
    report.add("write test", f"group {group}: empty payment header {head_num} created and deleted", ok=not left)
