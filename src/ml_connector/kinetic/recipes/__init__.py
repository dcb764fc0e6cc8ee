"""Create-or-update recipes, one module per entity, and the helpers they share.

A recipe turns one parsed record (a mapping of Epicor fields, or for X12 an ``advice``) into the
method calls the published schemas and public integrations show, in their order
(docs/kinetic.md lists each). Every recipe keeps DESIGN.md section 2:

- look up by natural key first (batched per posting batch, in pages under the row cap);
- an existing record is a read-modify-write of the full row as read (GetByID by GET, RowMod "U");
  a posted record is refused with ``PostedRecordError`` before anything is sent;
- a save whose answer was lost (``UnknownOutcomeError``) is settled by looking the record up
  before any retry, so nothing is created twice;
- record problems raise ``RecordError`` (the file goes on); nothing is decided by ``assert``.

``prepare(k, payloads, constants)`` does a batch's lookups and returns the poster for one record;
the poster returns the keys to store in the record ledger.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from ...errors import PostedRecordError, RecordError
from ...formats.x12.remit820 import PaymentAdvice
from .. import odata
from ..entities import Entity
from ..port import KineticPort

# What a recipe posts: mapped fields (CSV, fixed-width), or an 820 payment advice read by meaning.
Payload = Mapping[str, Any] | PaymentAdvice
Poster = Callable[[Payload], Awaitable[dict[str, Any]]]


class Recipe(Protocol):
    """What the entity registry's ``recipe`` points at."""

    async def prepare(self, k: KineticPort, payloads: Sequence[Payload],
                      constants: Mapping[str, str]) -> Poster:  # fmt: skip
        """Batched lookups for ``payloads``; returns the function that posts one of them."""
        ...


def plain(payload: Payload, entity: str) -> Mapping[str, Any]:
    """Mapped fields; an 820 advice given to an entity that is not posted from one is a record error."""
    if isinstance(payload, PaymentAdvice):
        raise RecordError(f"{entity} are posted from CSV or fixed-width fields, not from an 820 payment advice")
    return payload


def _loose(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


class KeyIndex:
    """Found rows by natural key: exact first, then case- and trailing-space-insensitive.

    Some instances compare IDs without case or trailing spaces: a file's ``v0001`` then finds
    ``V0001``. Exact matches always win, so case-sensitive instances are not merged.
    """

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self.exact: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.loose: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(self, row: dict[str, Any]) -> None:
        k = tuple(row.get(f) for f in self.key)
        self.exact[k] = row
        self.loose.setdefault(tuple(_loose(v) for v in k), row)

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        """The row for ``key``, or None."""
        return self.exact.get(key) or self.loose.get(tuple(_loose(v) for v in key))

    def __len__(self) -> int:
        return len(self.exact)


async def lookup(k: KineticPort, entity: Entity, keys: Sequence[Mapping[str, Any]],
                 select: Sequence[str] | None = None) -> KeyIndex:  # fmt: skip
    """Existing rows by natural key: batches of keys, each read in pages under the row cap."""
    index = KeyIndex(entity.natural_key)
    unique = list({tuple(key[f] for f in entity.natural_key): key for key in keys}.values())
    wide = len(entity.natural_key) > 1
    step = max(1, k.options.lookup_batch // 5 if wide else k.options.lookup_batch)
    orderby = ",".join(f"{f} asc" for f in entity.order_key)
    for i in range(0, len(unique), step):
        chunk = unique[i : i + step]
        if not wide:
            flt = odata.any_of(entity.natural_key[0], [c[entity.natural_key[0]] for c in chunk])
        else:
            flt = " or ".join(
                "(" + " and ".join(odata.compare(f, "eq", c[f]) for f in entity.natural_key) + ")" for c in chunk
            )
        for row in await k.query_all(entity.service, entity.entity_set, filter=flt, orderby=orderby, select=select,
                                     expect=len(chunk)):  # fmt: skip
            index.add(row)
    return index


async def read_ds(k: KineticPort, entity: Entity, row: Mapping[str, Any]) -> dict[str, Any]:
    """The record's full tableset (GetByID by GET, every key parameter)."""
    params = {p: row[f] for p, f in entity.by_id}
    return dict((await k.read(entity.service, "GetByID", params))["returnObj"])


def refuse_posted(entity: Entity, row: Mapping[str, Any], what: str) -> None:
    """Posted records are read-only in Kinetic: refuse before sending anything."""
    if row.get("Posted"):
        raise PostedRecordError(f"{entity.label} {what}: already posted in Kinetic; a posted record cannot be changed")


def first_row(ds: Mapping[str, Any], table: str, what: str) -> dict[str, Any]:
    """The tableset's first ``table`` row, or a record error naming what Kinetic left out."""
    rows = ds.get(table) or []
    if not rows:
        raise RecordError(f"{what}: Kinetic returned no {table} row")
    row: dict[str, Any] = rows[0]
    return row


def last_row(ds: Mapping[str, Any], table: str, what: str) -> dict[str, Any]:
    """The tableset's last ``table`` row (the one a GetNew… call appended)."""
    rows = ds.get(table) or []
    if not rows:
        raise RecordError(f"{what}: Kinetic returned no new {table} row")
    row: dict[str, Any] = rows[-1]
    return row


def is_duplicate(exc: RecordError) -> bool:
    """Kinetic refused an add because the key exists (409 DuplicateRecordException, or a 400 saying so)."""
    text = str(exc).lower()
    return "http 409" in text or "duplicate" in text or "already exists" in text


async def lookup_loose(k: KineticPort, entity: Entity, field_name: str, value: str) -> dict[str, Any] | None:
    """The row whose ``field_name`` equals ``value`` ignoring case and trailing spaces.

    For instances that compare IDs that way: the exact lookup missed, the add was refused as a
    duplicate, so the record exists under another spelling and is updated instead.
    """
    flt = f"toupper(trim({odata.field(field_name)})) eq {odata.literal(value.strip().upper())}"
    rows = await k.query(entity.service, entity.entity_set, filter=flt, orderby=f"{entity.order_key[0]} asc", top=2)
    return rows[0] if len(rows) == 1 else None


def ds_of(reply: Mapping[str, Any]) -> dict[str, Any]:
    """``parameters.ds`` of a method reply."""
    ds: dict[str, Any] = dict((reply.get("parameters") or {}).get("ds") or {})
    return ds
