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


@cache
def _known_fields(entity: str) -> frozenset[str]:
    """Field names of ``entity`` from the entity registry; empty when unknown (nothing is checked then)."""
    from .kinetic.entities import ENTITIES, known_fields

    return frozenset(known_fields(entity)) if entity in ENTITIES else frozenset()


def field_warnings(flows: FlowsFile, text: str, source: str) -> list[str]:
    """``file:line: flow 'x': format.columns[2].field: 'VendrID' is not a vendors field (did you mean …)``."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    flows_node = _line_node(root, "flows")
    out: list[str] = []
    for name, flow in flows.flows.items():
        fmt = flow.format
        if not isinstance(fmt, CsvFormat | FixedWidthFormat):
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
            if known and value not in known and not value.endswith("_c"):  # *_c: user-defined fields
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
