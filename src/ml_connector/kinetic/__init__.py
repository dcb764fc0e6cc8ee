"""Epicor Kinetic REST v2: client, OData builder, error mapping."""

from .client import KineticClient, KineticOptions, map_error
from .odata import encode_query, literal

__all__ = ["KineticClient", "KineticOptions", "encode_query", "literal", "map_error"]
