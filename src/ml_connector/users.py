"""Console users: names, roles, argon2id password hashes, and the check at login.

Roles: ``viewer`` reads every page; ``operator`` may also act (run, replay, re-send, abandon,
enable/disable, test). Passwords are hashed with argon2id (memory-hard; argon2-cffi's defaults,
RFC 9106's second recommended profile) and never stored, logged or audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from .errors import ConfigError, NotFoundError, UsageError
from .store import models as m

if TYPE_CHECKING:
    from .store import Store

ROLES = ("viewer", "operator")
MIN_PASSWORD = 10


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    created_at: datetime

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


class Users:
    """The ``console_users`` table."""

    def __init__(self, store: Store, hasher: PasswordHasher | None = None) -> None:
        self._store = store
        self._hasher = hasher or PasswordHasher()
        # Unknown names are checked against this too, so a login takes as long either way.
        self._dummy = self._hasher.hash("not a password of anyone")

    def add(self, name: str, role: str, password: str) -> User:
        """Create a user; refuses a short password, an unknown role or a taken name."""
        if not name or len(name) > 100 or not all(c.isalnum() or c in "-_.@" for c in name):
            raise UsageError(f"user name {name!r}: use letters, digits and - _ . @ (1-100 characters)")
        if role not in ROLES:
            raise UsageError(f"role {role!r}: use one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise UsageError(f"the password must have at least {MIN_PASSWORD} characters")
        now = self._store.clock()
        row = m.ConsoleUser(
            name=name, role=role, password_hash=self._hasher.hash(password), created_at=now, updated_at=now
        )
        try:
            with self._store.session() as s, s.begin():
                s.add(row)
        except IntegrityError:
            raise ConfigError(f"a console user named {name!r} already exists (remove it first)") from None
        self._store.audit.record("user.added", subject=name, details={"role": role})
        return self.get(name)

    def get(self, name: str) -> User:
        with self._store.session() as s:
            row = s.scalar(select(m.ConsoleUser).where(m.ConsoleUser.name == name))
            if row is None:
                raise NotFoundError(f"no console user {name!r} (see 'ml-connector users list')")
            return User(row.id, row.name, row.role, row.created_at)

    def find(self, user_id: int) -> User | None:
        """The user behind a session, or None once removed."""
        with self._store.session() as s:
            row = s.get(m.ConsoleUser, user_id)
            return None if row is None else User(row.id, row.name, row.role, row.created_at)

    def list(self) -> list[User]:
        with self._store.session() as s:
            rows = s.scalars(select(m.ConsoleUser).order_by(m.ConsoleUser.name)).all()
            return [User(r.id, r.name, r.role, r.created_at) for r in rows]

    def count(self) -> int:
        return len(self.list())

    def remove(self, name: str) -> None:
        self.get(name)
        with self._store.session() as s, s.begin():
            s.execute(delete(m.ConsoleUser).where(m.ConsoleUser.name == name))
        self._store.audit.record("user.removed", subject=name)

    def verify(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (same work for unknown names)."""
        with self._store.session() as s:
            row = s.scalar(select(m.ConsoleUser).where(m.ConsoleUser.name == name))
            stored = row.password_hash if row is not None else self._dummy
            try:
                self._hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                return None
            if row is None:
                return None
            if self._hasher.check_needs_rehash(stored):
                row.password_hash = self._hasher.hash(password)
                s.commit()
            return User(row.id, row.name, row.role, row.created_at)
