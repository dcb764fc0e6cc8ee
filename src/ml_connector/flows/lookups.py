"""Kinetic look-ups for X12 mappings: find a record by another field before posting.

A partner's remittance names an invoice by its legal number or PO, or a vendor by its name
or tax id, when our key is something else. A mapping's ``find`` step says which field to
compare and which to return; this module runs those steps for a batch of advices in as few
queries as possible, each under Kinetic's 100-row cap. A value that matches nothing, or
several different records, is never guessed: it is left as sent and reported in
``advice.lookup_errors`` so the poster fails that record with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from ..config import FIND_DEFAULTS, KineticFind, X12FieldMap
from ..formats.x12.remit820 import PaymentAdvice
from ..kinetic import odata

ROW_CAP = 100  # Kinetic returns at most this many rows per call (reference/epicor-kinetic-api.md)
VALUES_PER_QUERY = 49  # with $top=ROW_CAP, a value matching two rows is still seen as ambiguous


class QueryClient(Protocol):
    """What look-ups need from a Kinetic client (``KineticClient.query`` fits)."""

    async def query(self, service: str, entity_set: str, *, filter: str | None = None,
                    select: list[str] | None = None, top: int = 100) -> list[dict[str, Any]]: ...  # fmt: skip


def _where(target: str, find: KineticFind) -> tuple[str, str, str]:
    service, entity_set = FIND_DEFAULTS.get(target, ("", ""))
    return find.service or service, find.entity_set or entity_set, find.returns or target


async def find_by(client: QueryClient, service: str, entity_set: str, by: str, returns: str,
                  values: Sequence[str]) -> dict[str, set[str]]:  # fmt: skip
    """value -> the distinct ``returns`` values of the rows whose ``by`` equals it, batched."""
    unique = list(dict.fromkeys(v for v in values if v))
    found: dict[str, set[str]] = {v: set() for v in unique}
    for i in range(0, len(unique), VALUES_PER_QUERY):
        chunk = unique[i : i + VALUES_PER_QUERY]
        rows = await client.query(service, entity_set, filter=odata.any_of(by, list(chunk)),
                                  select=list(dict.fromkeys([by, returns])), top=ROW_CAP)  # fmt: skip
        for row in rows:
            key = str(row.get(by, "")).strip()
            if key in found and row.get(returns) not in (None, ""):
                found[key].add(str(row[returns]))
    return found


async def resolve_lookups(client: QueryClient, advices: Sequence[PaymentAdvice],
                          mapping: dict[str, X12FieldMap]) -> None:  # fmt: skip
    """Run every queued ``find`` of ``advices`` (one query per target and 49 values); in place."""
    wanted: dict[str, list[str]] = {}
    for advice in advices:
        for target, value, _line in advice.lookups:
            wanted.setdefault(target, []).append(value)
    results: dict[str, dict[str, set[str]]] = {}
    for target, values in wanted.items():
        spec = mapping.get(target)
        if spec is None or spec.find is None:
            continue
        service, entity_set, returns = _where(target, spec.find)
        results[target] = await find_by(client, service, entity_set, spec.find.by, returns, values)
    for advice in advices:
        for target, value, line in advice.lookups:
            spec = mapping.get(target)
            if spec is None or spec.find is None:
                continue
            matches = results.get(target, {}).get(value, set())
            if len(matches) != 1:
                how = "no" if not matches else f"{len(matches)} different"
                advice.lookup_errors.append(
                    f"{target} {value!r}: {how} Kinetic records have {spec.find.by} = {value!r}"
                    + (f" ({', '.join(sorted(matches)[:5])})" if matches else "")
                )
                continue
            (result,) = matches
            advice.mapped[target] = result
            if line is not None:
                advice.lines[line] = replace(advice.lines[line], invoice_num=result)
            elif target in ("CheckRef", "CheckNum"):
                advice.trace_number = result
            elif target == "VendorID":
                advice.payee_id = result
        advice.lookups.clear()  # done: a replayed batch must not look up the mapped values again
