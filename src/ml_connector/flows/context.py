"""What a run needs (store, keys, staging, options) and what it returns; no global state.

A run is a function of (flow config, context): any process or worker can run any flow.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ..connections import EpicorSettings, SftpSettings
from ..errors import ConfigError, MLConnectorError
from ..kinetic import KineticClient
from ..kinetic.client import KineticOptions
from ..secrets import Keyring
from ..sftp import SftpClient
from ..sftp.client import SftpOptions
from ..states import RunState
from ..store import Store
from .ports import Clock, utc_clock

FAILPOINT_ENV = "ML_CONNECTOR_FAILPOINT"


def failpoint(name: str) -> None:
    """Crash-test hook: ``ML_CONNECTOR_FAILPOINT=name`` kills this process (SIGKILL) at ``name``.

    Named step boundaries of the run semantics; the crash tests use them to stop a run exactly
    between two steps. Unset (always, in production) it costs one dict lookup.
    """
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Progress:
    """Progress sink; the CLI draws bars from it, the default ignores it."""

    def phase(self, text: str, total: int | None = None) -> None:
        """A new phase (``extract``, ``upload``, ``post FILE``…) with an optional total."""

    def advance(self, records: int = 0, files: int = 0, nbytes: int = 0) -> None:
        """Work done since the last call."""

    def note(self, text: str) -> None:
        """A line worth showing (a file delivered, a file sent to the error folder)."""


@dataclass
class RunResult:
    flow: str
    direction: str
    run_id: str | None
    state: str  # succeeded | partial | failed | stopped | interrupted | locked | dry-run
    counts: dict[str, int] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    preview: list[dict[str, Any]] = field(default_factory=list)
    error_exit_code: int = 1  # the exit code of the error that ended a failed run (errors.py)

    @property
    def exit_code(self) -> int:
        """DESIGN.md section 5: 0 ok, 1 failed records/files, 2 config, 3 connection/auth, 4 locked."""
        if self.state in (RunState.SUCCEEDED, RunState.DRY_RUN, RunState.STOPPED):
            return 0
        if self.state == RunState.LOCKED:
            return 4  # another process holds the flow's lock: nothing was attempted, try later
        if self.state == RunState.INTERRUPTED:
            return 130  # Ctrl-C, as shells report SIGINT
        return self.error_exit_code

    def bump(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


class AuditBuffer:
    """Audit events of one run, written in batches and inside the ledger's transactions.

    Every API call and transfer is recorded; buffering keeps one SQLite transaction from being
    spent per call. ``flush(session)`` writes pending events in the caller's transaction, so a
    ledger change and the events that explain it commit together.
    """

    def __init__(self, store: Store, flow: str, run_id: str | None, limit: int = 200,
                 observe: Callable[[str, dict[str, Any]], None] | None = None) -> None:  # fmt: skip
        self.store, self.flow, self.run_id, self.limit = store, flow, run_id, limit
        self.observe = observe
        self._pending: list[dict[str, Any]] = []
        self._in_transaction = False

    def __call__(self, kind: str, **kw: Any) -> None:
        kw.setdefault("flow", self.flow)
        kw.setdefault("run_id", self.run_id)
        self._pending.append({"kind": kind, **kw})
        if self.observe is not None:
            self.observe(kind, kw)
        if len(self._pending) >= self.limit and not self._in_transaction:
            self.flush()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A ledger transaction that also writes the pending events; no flush on the side meanwhile
        (a second connection writing while this one holds SQLite's write lock would deadlock)."""
        with self.store.session() as s, s.begin():
            self._in_transaction = True
            try:
                yield s
                self.flush(s)
            finally:
                self._in_transaction = False

    def flush(self, session: Session | None = None) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        if session is not None:
            for event in pending:
                self.store.audit.record(**event, session=session)
            return
        with self.store.session() as s, s.begin():
            for event in pending:
                self.store.audit.record(**event, session=s)


@dataclass
class RunContext:
    """Everything a run needs from outside; built by the CLI, the scheduler, or a test."""

    store: Store
    keyring: Keyring
    staging: Path
    trigger: str = "cli"
    progress: Progress = field(default_factory=Progress)
    kinetic_options: KineticOptions = field(default_factory=KineticOptions)
    sftp_options: SftpOptions = field(default_factory=SftpOptions)
    lock_ttl: timedelta = timedelta(minutes=5)
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    stop: asyncio.Event | None = None  # set by serve on SIGTERM: finish the current step, then stop
    observe: Callable[[str, dict[str, Any]], None] | None = None  # metrics hook, sees every audit event
    clock: Clock = utc_clock  # the only 'now' a flow reads: a test fixes the date a 997 or a name carries

    def check_stop(self) -> None:
        """Between steps: leave cleanly (every ledger row consistent) when a stop was requested."""
        if self.stop is not None and self.stop.is_set():
            raise StopRequested("stop requested: the run ended after its current step")

    def epicor(self, name: str) -> EpicorSettings:
        settings = self.store.connections.settings(name, self.keyring)
        if not isinstance(settings, EpicorSettings):
            raise ConfigError(f"connection {name!r} is an SFTP connection, the flow needs an Epicor one")
        return settings

    def sftp_settings(self, name: str) -> SftpSettings:
        settings = self.store.connections.settings(name, self.keyring)
        if not isinstance(settings, SftpSettings):
            raise ConfigError(f"connection {name!r} is an Epicor connection, the flow needs an SFTP one")
        return settings

    def kinetic(self, name: str, audit: AuditBuffer, flow: str, run_id: str | None) -> KineticClient:
        return KineticClient(self.epicor(name), options=self.kinetic_options, audit=audit, flow=flow, run_id=run_id)

    def sftp(self, name: str, audit: AuditBuffer) -> SftpClient:
        return SftpClient(self.sftp_settings(name), options=self.sftp_options, audit=audit, name=name)


class Lease:
    """The flow's database lock, renewed while the run works; a dead holder's lease is taken over.

    A holder on this host whose process no longer exists (a crash, a SIGKILL) cannot finish, so
    its lease is taken at once instead of waiting out the TTL. Other hosts' leases expire.
    """

    def __init__(self, ctx: RunContext, flow: str) -> None:
        self.ctx, self.flow = ctx, flow
        self._renewed = 0.0

    def acquire(self) -> bool:
        locks = self.ctx.store.locks
        if locks.acquire(self.flow, self.ctx.owner, self.ctx.lock_ttl):
            self._renewed = time.monotonic()
            return True
        holder = locks.holder(self.flow)
        if holder is not None and _dead_local_owner(holder[0]):
            with self.ctx.store.session() as s, s.begin():
                from ..store import models as m

                s.query(m.FlowLock).filter(m.FlowLock.flow == self.flow, m.FlowLock.owner == holder[0]).delete()
            if locks.acquire(self.flow, self.ctx.owner, self.ctx.lock_ttl):
                self._renewed = time.monotonic()
                return True
        return False

    def renew(self) -> None:
        """Cheap to call often: renews at most every TTL/4."""
        if time.monotonic() - self._renewed < self.ctx.lock_ttl.total_seconds() / 4:
            return
        if not self.ctx.store.locks.acquire(self.flow, self.ctx.owner, self.ctx.lock_ttl):
            raise LostLeaseError(f"flow {self.flow}: another process took the lock (this run was too slow)")
        self._renewed = time.monotonic()

    def release(self) -> None:
        self.ctx.store.locks.release(self.flow, self.ctx.owner)


class LostLeaseError(MLConnectorError):
    exit_code = 1


class StopRequested(MLConnectorError):
    exit_code = 1


def _dead_local_owner(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
