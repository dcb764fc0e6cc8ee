"""Field names a mapping uses, checked against the fields the flow's Kinetic entity has.

A misspelled ``field:`` passes the schema (any string is a name) and then fails every record at
Kinetic; ``flows validate`` warns instead, with the line and a did-you-mean. Warnings, not errors:
a real instance has user-defined ``_c`` fields and tables this list cannot know.
"""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any

import yaml

from .config import Column, CsvFormat, FixedWidthFormat, FlowsFile, _line_node, _line_of

# The tables behind each entity (reference/epicor-kinetic-api.md section 3), header first.
_ENTITY_TABLES = {
    "vendors": ("Vendor",),
    "ap-invoices": ("APInvHed", "APInvDtl"),
    "ap-payments": ("CheckHed", "APTran"),
    "cash-receipts": ("CashHead", "CashDtl"),
}
# Fields Kinetic returns beside a table's own columns (linked descriptions used by the mappings).
_LINKED = {"VendorNumVendorID", "VendorNumName", "CustID", "CustNumCustID"}


@cache
def _known_fields(entity: str) -> frozenset[str]:
    """Field names of ``entity``; empty when unknown (nothing is checked then).

    Taken from the sandbox's schema tables until ``ml_connector.kinetic.entities.known_fields``
    exists; this one function is the seam to swap.
    """
    tables = _ENTITY_TABLES.get(entity)
    if not tables:
        return frozenset()
    from .mapping import DEFAULT_CSV, DEFAULT_FIXED
    from .sandbox.kinetic_schema import TABLES

    names = set(_LINKED)
    for table in tables:
        names.update(c.name for c in TABLES[table].columns)
    for defaults in (DEFAULT_CSV, DEFAULT_FIXED):
        names.update(c.field for c in defaults.get(entity, []))
    return frozenset(names)


def field_warnings(flows: FlowsFile, text: str, source: str) -> list[str]:
    """``file:line: flow 'x': format.columns[2].field: 'VendrID' is not a vendors field (did you mean …)``."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    flows_node = _line_node(root, "flows")
    out: list[str] = []
    for name, flow in flows.flows.items():
        fmt = flow.format
        if not isinstance(fmt, CsvFormat | FixedWidthFormat) or flow.entity not in _ENTITY_TABLES:
            continue
        if not fmt.columns and not getattr(fmt, "records", None) and not flow.constants:
            continue  # the default mapping names only known fields; skip loading the tables
        known = _known_fields(flow.entity)
        node = _line_node(flows_node, name)
        named: list[tuple[str, list[Any]]] = []
        inbound = flow.direction == "inbound"
        named += _columns(fmt.columns, ["format", "columns"], inbound)
        if isinstance(fmt, FixedWidthFormat):
            for i, rec in enumerate(fmt.records):
                named += _columns(rec.columns, ["format", "records", i, "columns"], inbound)
        for key in flow.constants if inbound else ():
            named.append((key, ["constants", key]))
        for value, parts in named:
            if value not in known:
                line = _line_of(node, parts)
                path = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in parts).replace(".[", "[")
                close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                where = f"{source}:{line}: flow {name!r}: {path}"
                out.append(f"{where}: {value!r} is not a known {flow.entity} field{hint}")
    return out


def _columns(columns: list[Column], base: list[Any], inbound: bool) -> list[tuple[str, list[Any]]]:
    out: list[tuple[str, list[Any]]] = []
    for i, col in enumerate(columns):
        # Inbound, `field` is where the value goes; outbound, a constant or concat column only names itself.
        if inbound or (col.value is None and not col.concat):
            out.append((col.field, [*base, i, "field"]))
        for j, part in enumerate(col.concat or []):
            out.append((part, [*base, i, "concat", j]))
    return out
