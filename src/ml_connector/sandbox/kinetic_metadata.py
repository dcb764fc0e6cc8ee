"""A minimal ``{Service}/$metadata`` for the Kinetic sandbox (CSDL XML, OData v4 namespaces).

Added for the fit check (``ml-connector connections check``), which reads a service's method
signatures and entity properties from ``$metadata``. It lists each entity set's properties (the
sandbox table's columns) and each method the sandbox serves as an ``Action`` with the parameters
declared in ``kinetic_methods`` (from the published schemas). How a real Kinetic renders its
methods in ``$metadata`` is not confirmed by the evidence; the fit check reports what it finds.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from sqlalchemy import Boolean, DateTime, Integer, Numeric

from .kinetic_methods import declared
from .kinetic_schema import SERVICES, TABLES

EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"


def _edm_type(column: object) -> str:
    kind = getattr(column, "type", None)
    if isinstance(kind, Boolean):
        return "Edm.Boolean"
    if isinstance(kind, Integer):
        return "Edm.Int32"
    if isinstance(kind, Numeric):
        return "Edm.Decimal"
    if isinstance(kind, DateTime):
        return "Edm.DateTimeOffset"
    return "Edm.String"


def metadata_xml(service: str, methods: set[str]) -> str:
    """CSDL for ``service``: its entity types and sets, and ``methods`` as actions."""
    spec = SERVICES[service]
    parts = [f'<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" xmlns:edmx="{EDMX}">',
             f'<edmx:DataServices><Schema Namespace={quoteattr(service)} xmlns="{EDM}">']  # fmt: skip
    for table in dict.fromkeys(spec.entity_sets.values()):
        parts.append(f"<EntityType Name={quoteattr(table + 'Row')}>")
        parts.extend(f"<Property Name={quoteattr(c.name)} Type={quoteattr(_edm_type(c))}/>" for c in TABLES[table].c)
        parts.append("</EntityType>")
    for method in sorted(methods):
        parts.append(f"<Action Name={quoteattr(method)}>")
        parts.extend(f"<Parameter Name={quoteattr(p)}/>" for p in declared(service, method) or ())
        parts.append("</Action>")
    parts.append('<EntityContainer Name="Container">')
    for name, table in spec.entity_sets.items():
        parts.append(f"<EntitySet Name={quoteattr(name)} EntityType={quoteattr(f'{service}.{table}Row')}/>")
    parts.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
    return "".join(parts)
