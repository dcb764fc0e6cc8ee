"""One retry policy for every remote system (Kinetic over HTTP, partners over SFTP).

Only ``TransientError`` is retried: exponential backoff with full jitter, capped, and never
sooner than a server's ``Retry-After`` (carried on the error as ``retry_after``). Everything
else (fatal, record-level, unknown outcome) surfaces on the first attempt, because retrying
it either cannot help or could write twice. Built on tenacity so the maths is not ours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base, wait_random_exponential

from .errors import TransientError

Sleep = Callable[[float], Awaitable[None]]


class _WaitHonouringRetryAfter(wait_base):
    """Jittered exponential backoff, but at least the ``Retry-After`` the server asked for."""

    def __init__(self, backoff_s: float, backoff_max_s: float) -> None:
        self._jitter = wait_random_exponential(multiplier=backoff_s, max=backoff_max_s)

    def __call__(self, retry_state: RetryCallState) -> float:
        jitter = float(self._jitter(retry_state))
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        asked = getattr(exc, "retry_after", None) or 0.0
        return max(float(asked), jitter)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts and how long to wait between them (explicit defaults)."""

    attempts: int = 6
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0

    def retrying(self, sleep: Sleep, *, before_sleep: Callable[[RetryCallState], Any] | None = None) -> AsyncRetrying:
        """A tenacity loop: ``async for attempt in policy.retrying(sleep): with attempt: ...``."""
        return AsyncRetrying(
            stop=stop_after_attempt(max(1, self.attempts)),
            wait=_WaitHonouringRetryAfter(self.backoff_s, self.backoff_max_s),
            retry=retry_if_exception_type(TransientError),
            sleep=sleep,
            reraise=True,
            before_sleep=before_sleep,
        )
