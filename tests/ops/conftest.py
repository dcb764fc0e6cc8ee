"""Operations tests reuse the flows world: sandbox over HTTP, OpenSSH sshd, a home with connections."""

from __future__ import annotations

from ..flows.conftest import embedded, env, loop_thread, sandbox, sqlite_env, sshd  # noqa: F401 - fixtures
