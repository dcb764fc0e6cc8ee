"""Epicor Kinetic REST v2: client, OData builder, error mapping, entity registry.

The names below load on first use (PEP 562): the flows.yaml validator reads the entity registry
(``kinetic.entities``) and must not pay for importing httpx and the client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import KineticClient, KineticOptions, map_error
    from .odata import encode_query, literal

__all__ = ["KineticClient", "KineticOptions", "encode_query", "literal", "map_error"]
_HOMES = {
    "KineticClient": ".client",
    "KineticOptions": ".client",
    "map_error": ".client",
    "encode_query": ".odata",
    "literal": ".odata",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value
