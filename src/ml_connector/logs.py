"""Logging with secret redaction on the handlers.

A ``logging.Filter`` on a logger does not apply to records from its child loggers, so the
redaction filter is attached to every handler instead: whatever reaches a handler is scrubbed,
including exception tracebacks.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Mapping
from typing import Any

from .secrets import REVEALED

MASK = "********"

# Key names whose values are secrets wherever they show up (headers, dicts, key=value text).
SECRET_KEY_NAMES = (
    "password",
    "passphrase",
    "api_key",
    "api-key",
    "apikey",
    "x-api-key",
    "authorization",
    "private_key",
    "secret",
    "token",
    "accesstoken",
)
_KEY_VALUE = re.compile(
    r"(?i)(?P<key>[\w-]*(?:" + "|".join(re.escape(k) for k in SECRET_KEY_NAMES) + r")[\w-]*)"
    r"(?P<sep>['\"]?\s*[:=]\s*['\"]?)"
    r"(?P<value>(?:Bearer |Basic )?[^\s'\",;&}]+)"
)


def redact_text(text: str) -> str:
    """Scrub known secret values and ``key=value`` pairs whose key names a secret."""
    for value in REVEALED.values():
        if value in text:
            text = text.replace(value, MASK)
    return _KEY_VALUE.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)


def is_secret_key(name: str) -> bool:
    lowered = name.lower()
    return any(k in lowered for k in SECRET_KEY_NAMES)


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with secret-named keys masked and string values scrubbed, recursively."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if is_secret_key(str(key)):
            out[key] = MASK
        else:
            out[key] = _redact_value(value)
    return out


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Rewrites each record's message, args and traceback text with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact_text("".join(traceback.format_exception(*record.exc_info)))
            # The formatter would otherwise format exc_info again, unredacted.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def configure_logging(level: int = logging.WARNING, stream: Any = None) -> logging.Handler:
    """Route ``ml_connector`` logs to stderr through a redacting handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("ml_connector")
    for old in list(root.handlers):
        if getattr(old, "_ml_connector", False):
            root.removeHandler(old)
    handler._ml_connector = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler
