"""Reading secrets from an environment variable, a file or stdin: never from argv."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TextIO

from ..errors import UsageError
from ..secrets import Secret

# Conventional environment variable names: upper case, digits, underscores.
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")


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

    Messages name the option, never the value. An env-var name is shown when it looks like one
    (``KINETIC_PASSWORD``): a name is not a secret, and the operator needs to see which variable
    is missing. Anything else is not echoed: a user may have typed the secret where the name belongs.
    """
    sources = [s for s in (env is not None, file is not None, stdin) if s]
    if len(sources) > 1:
        raise UsageError(f"{label}: give only one of --{label}-env, --{label}-file, --{label}-stdin")
    if env is not None:
        value = (os.environ if environ is None else environ).get(env)
        if not value:
            if ENV_NAME.fullmatch(env):
                # Worded without "NAME: value" so the log scrubber does not mask the name.
                raise UsageError(f"environment variable {env} (--{label}-env) is not set or is empty")
            raise UsageError(
                f"--{label}-env: that environment variable is not set or is empty (its name is not shown: it "
                "does not look like a variable name; was the secret typed in its place?)"
            )
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
