"""Reading secrets from an environment variable, a file or stdin: never from argv."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from ..errors import UsageError
from ..secrets import Secret


def read_secret(
    label: str,
    *,
    env: str | None,
    file: Path | None,
    stdin: bool,
    stream: TextIO | None = None,
    environ: dict[str, str] | None = None,
) -> Secret | None:
    """The secret from exactly one source, or None when no source was named.

    Messages name the option, never the value, and never echo an env-var name either (a user
    who typed the secret itself where the name belongs would otherwise see it printed).
    """
    sources = [s for s in (env is not None, file is not None, stdin) if s]
    if len(sources) > 1:
        raise UsageError(f"{label}: give only one of --{label}-env, --{label}-file, --{label}-stdin")
    if env is not None:
        value = (os.environ if environ is None else environ).get(env)
        if not value:
            raise UsageError(f"--{label}-env: that environment variable is not set or is empty")
        return Secret(value)
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--{label}-file {file}: cannot read ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise UsageError(f"--{label}-file {file}: not UTF-8 text") from None
        value = value if label in ("private-key",) else value.rstrip("\r\n")
        if not value:
            raise UsageError(f"--{label}-file {file}: is empty")
        return Secret(value)
    if stdin:
        line = (stream or sys.stdin).readline()
        value = line.rstrip("\r\n")
        if not value:
            raise UsageError(f"--{label}-stdin: nothing was read from standard input")
        return Secret(value)
    return None


def refuse_argv_secret(option: str, value: str | None) -> None:
    """Refuse a secret given as a command-line value (visible in ps, shell history, CI logs)."""
    if value is not None:
        raise UsageError(
            f"{option} does not take a value on the command line (it would be visible in "
            f"process lists and shell history); use {option}-env NAME, {option}-file PATH or "
            f"{option}-stdin"
        )


def check_single_stdin(*flags: bool) -> None:
    if sum(bool(f) for f in flags) > 1:
        raise UsageError("only one secret can be read from standard input per command")
