"""What flows and recipes need from Epicor: the ``KineticPort`` protocol.

``KineticClient`` is the production implementation (transport, auth, retries, OData); a unit
test passes anything with these methods (``tests/unit``), so a recipe's or a flow's decisions
are tested without a network. Only the calls the recipes and flows make are here; ``ping``,
``metadata`` and ``count`` stay on the client, for ``connections test`` and ``check``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .client import KineticOptions


class KineticPort(Protocol):
    """The recipe-facing surface of a Kinetic client."""

    @property
    def options(self) -> KineticOptions:
        """Page cap and lookup batch size the recipes size their reads by."""
        ...

    async def query(self, service: str, entity_set: str, *, filter: str | None = None,
                    select: Sequence[str] | None = None, orderby: str | None = None, top: int = 100,
                    skip: int | None = None, expand: Sequence[str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """One page of an entity set."""
        ...

    async def query_all(self, service: str, entity_set: str, *, filter: str | None, orderby: str,
                        select: Sequence[str] | None = None, expand: Sequence[str] | None = None,
                        expect: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Every row a bounded filter matches."""
        ...

    async def call(self, service: str, method: str, body: dict[str, Any], *, write: bool = False) -> dict[str, Any]:
        """A business-object method by POST."""
        ...

    async def read(self, service: str, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A read-only business-object method by GET."""
        ...

    def extract(
        self,
        service: str,
        entity_set: str,
        *,
        cursor: str,
        after: Any,
        page_size: int = 100,
        select: list[str] | None = None,
        extra_filter: str | None = None,
        tiebreak: str | Sequence[str] | None = "SysRevID",
        after_tiebreak: Any = None,
        expand: Sequence[str] | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of rows changed since ``after`` (keyset on ``cursor``)."""
        ...
