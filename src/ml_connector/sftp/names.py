"""Remote names are data: validation, filters, temporary names and local staging names.

Pure functions. A remote name never becomes a local path: staging names are generated.
"""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import RecordError

TEMP_SUFFIXES = (".part", ".tmp", ".filepart", ".partial", ".writing")
MAX_NAME_BYTES = 255


class UnsafeNameError(RecordError):
    """A remote file name that must not be handled (traversal, control characters…)."""


def check_remote_name(name: str) -> str:
    """Return ``name`` if it is a plain file name, else raise ``UnsafeNameError`` saying why."""
    shown = repr(name[:60])
    if not name:
        raise UnsafeNameError("empty file name")
    if "/" in name or "\\" in name:
        raise UnsafeNameError(f"file name {shown} contains a path separator")
    if name == "." or ".." in name:
        raise UnsafeNameError(f"file name {shown} contains '..'")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UnsafeNameError(f"file name {shown} contains NUL or control characters")
    if name.startswith("-"):
        raise UnsafeNameError(f"file name {shown} starts with '-'")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise UnsafeNameError(f"file name {shown}… is longer than {MAX_NAME_BYTES} bytes")
    return name


def is_temporary(name: str) -> bool:
    """Dot-files (ours: ``.NAME.part``) and names partners use while still writing."""
    return name.startswith(".") or name.lower().endswith(TEMP_SUFFIXES)


def name_filter(pattern: str, pattern_type: str = "glob") -> Callable[[str], bool]:
    """A predicate for the flow's pattern; globs are case-sensitive, like the server's names."""
    if pattern_type == "regex":
        rx = re.compile(pattern)
        return lambda name: rx.fullmatch(name) is not None
    rx = re.compile(fnmatch.translate(pattern))
    return lambda name: rx.match(name) is not None


@dataclass(frozen=True)
class TempNaming:
    """How our upload temporaries are named in the target folder (default ``.NAME.part``)."""

    prefix: str = "."
    suffix: str = ".part"

    def temp_for(self, final: str) -> str:
        return f"{self.prefix}{final}{self.suffix}"

    def is_ours(self, name: str) -> bool:
        return (
            name.startswith(self.prefix) and name.endswith(self.suffix) and len(name) > len(self.prefix + self.suffix)
        )

    def final_of(self, temp: str) -> str:
        return temp[len(self.prefix) : len(temp) - len(self.suffix)]


def unique_name(name: str, taken: Callable[[str], bool], limit: int = 1000) -> str:
    """``name``, or ``stem.1.ext``, ``stem.2.ext``… for the first one ``taken`` says is free."""
    if not taken(name):
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    for n in range(1, limit):
        candidate = f"{stem}.{n}.{ext}" if ext else f"{stem}.{n}"
        if not taken(candidate):
            return candidate
    raise RecordError(f"no free name for {name!r} after {limit} tries")


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def staging_name(remote_name: str) -> str:
    """A generated local name: a UUID, plus a sanitised extension for humans reading staging/."""
    ext = remote_name.rpartition(".")[2] if "." in remote_name else ""
    ext = _SAFE.sub("", ext)[:10]
    return f"{uuid.uuid4().hex}{'.' + ext if ext else ''}"
