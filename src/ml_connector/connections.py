"""Connection settings for Epicor Kinetic and SFTP, and what of them may be shown.

Everything here is sealed as one ciphertext per connection row. ``public_view`` is the only
projection printed by the CLI: credentials appear as "set"/"not set", and host, user and URL
(which help an attacker find and target a partner) are shown as a short hint unless the
operator asks with ``--reveal-identity``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError, UsageError
from .secrets import Secret

EpicorAuth = Literal["basic", "token"]


def _hint(value: str) -> str:
    if not value:
        return ""
    return f"{value[:2]}… ({len(value)} chars)"


def _secret_state(secret: Secret | None) -> str:
    return "set" if secret else "not set"


@dataclass(frozen=True)
class EpicorSettings:
    """How to reach one Kinetic instance (REST v2)."""

    url: str  # https://host/instance
    company: str
    username: str
    api_key: Secret
    password: Secret
    auth: EpicorAuth = "basic"
    plant: str | None = None
    token_refresh_margin_s: int = 300
    timeout_s: float = 30.0
    verify_tls: bool = True
    ca_bundle: str | None = None
    datetime_literal: str = "zoned"  # $filter datetimes: "zoned" (…Z, OData v4) or "naive" (no zone)

    kind = "epicor"

    def __post_init__(self) -> None:
        if not self.url.startswith(("https://", "http://")):
            raise ConfigError("Epicor --url must start with https:// (or http:// for a sandbox)")
        if not self.company:
            raise ConfigError("Epicor --company must not be empty")
        if self.auth not in ("basic", "token"):
            raise ConfigError("Epicor --auth must be 'basic' or 'token'")
        if self.datetime_literal not in ("zoned", "naive"):
            raise ConfigError("Epicor --datetime-literal must be 'zoned' or 'naive'")

    def to_plain(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "company": self.company,
            "plant": self.plant,
            "auth": self.auth,
            "username": self.username,
            "api_key": self.api_key.reveal(),
            "password": self.password.reveal(),
            "token_refresh_margin_s": self.token_refresh_margin_s,
            "timeout_s": self.timeout_s,
            "verify_tls": self.verify_tls,
            "ca_bundle": self.ca_bundle,
            "datetime_literal": self.datetime_literal,
        }

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> EpicorSettings:
        data = dict(data)
        data["api_key"] = Secret(data.get("api_key") or "")
        data["password"] = Secret(data.get("password") or "")
        return cls(**data)

    def public_view(self, reveal_identity: bool = False) -> dict[str, Any]:
        show = (lambda v: v) if reveal_identity else _hint
        return {
            "url": show(self.url),
            "company": self.company,
            "plant": self.plant,
            "auth": self.auth,
            "username": show(self.username),
            "api_key": _secret_state(self.api_key),
            "password": _secret_state(self.password),
            "timeout_s": self.timeout_s,
            "verify_tls": self.verify_tls,
            "ca_bundle": self.ca_bundle,
            "datetime_literal": self.datetime_literal,
        }


@dataclass(frozen=True)
class SftpSettings:
    """How to reach one partner's SFTP server, with its pinned host keys."""

    host: str
    username: str
    port: int = 22
    password: Secret | None = None
    private_key: Secret | None = None  # OpenSSH or PEM text
    passphrase: Secret | None = None
    host_keys: tuple[str, ...] = field(default_factory=tuple)  # "ssh-ed25519 AAAA…" lines
    host_fingerprints: tuple[str, ...] = field(default_factory=tuple)  # "SHA256:…"

    kind = "sftp"

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("SFTP --host must not be empty")
        if not 0 < self.port < 65536:
            raise ConfigError(f"SFTP --port {self.port} is not a TCP port")
        if not (self.password or self.private_key):
            raise ConfigError("an SFTP connection needs a password or a private key")

    def to_plain(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password.reveal() if self.password else None,
            "private_key": self.private_key.reveal() if self.private_key else None,
            "passphrase": self.passphrase.reveal() if self.passphrase else None,
            "host_keys": list(self.host_keys),
            "host_fingerprints": list(self.host_fingerprints),
        }

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> SftpSettings:
        data = dict(data)
        for name in ("password", "private_key", "passphrase"):
            data[name] = Secret(data[name]) if data.get(name) else None
        data["host_keys"] = tuple(data.get("host_keys") or ())
        data["host_fingerprints"] = tuple(data.get("host_fingerprints") or ())
        # Stored by earlier versions but never read: the connect timeout is SftpOptions.connect_timeout_s.
        data.pop("connect_timeout_s", None)
        return cls(**data)

    def pinned_fingerprints(self) -> list[str]:
        out = list(self.host_fingerprints)
        for line in self.host_keys:
            out.append(openssh_fingerprint(line))
        return out

    def public_view(self, reveal_identity: bool = False) -> dict[str, Any]:
        show = (lambda v: v) if reveal_identity else _hint
        return {
            "host": show(self.host),
            "port": self.port,
            "username": show(self.username),
            "auth": "private key" if self.private_key else "password",
            "password": _secret_state(self.password),
            "private_key": _secret_state(self.private_key),
            "passphrase": _secret_state(self.passphrase),
            "pinned_host_keys": self.pinned_fingerprints() or "NONE (connections will be refused)",
        }


ConnectionSettings = EpicorSettings | SftpSettings


def openssh_fingerprint(public_key_line: str) -> str:
    """``SHA256:…`` fingerprint of an OpenSSH public key line, as ``ssh-keygen -lf`` prints it."""
    import base64

    parts = public_key_line.split()
    if len(parts) < 2:
        raise ConfigError("a host key is 'TYPE BASE64' (e.g. 'ssh-ed25519 AAAA…')")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise ConfigError("host key: the key part is not base64") from None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def serialize(settings: ConnectionSettings) -> bytes:
    return json.dumps(settings.to_plain(), sort_keys=True).encode()


def deserialize(kind: str, blob: bytes) -> ConnectionSettings:
    data = json.loads(blob)
    if kind == "epicor":
        return EpicorSettings.from_plain(data)
    if kind == "sftp":
        return SftpSettings.from_plain(data)
    raise ConfigError(f"unknown connection kind {kind!r}")


# --- SSH keys given on the command line or in the console ------------------------------------


def check_private_key(data: str, passphrase: str | None, path: Path | None) -> None:
    """Refuse a private key asyncssh cannot load (with this passphrase) before it is stored."""
    import asyncssh  # loaded only when a key is checked: the CLI starts faster

    try:
        asyncssh.import_private_key(data, passphrase)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        hint = " (is it encrypted? give the passphrase)" if "passphrase" in str(exc).lower() else ""
        raise UsageError(f"--key-file {path}: not a usable private key{hint}") from None


def host_key_line(line: str) -> str:
    """An OpenSSH public key line reduced to 'TYPE BASE64' (the comment dropped), or a usage error."""
    import asyncssh  # loaded only when a key is checked: the CLI starts faster

    line = line.strip()
    try:
        asyncssh.import_public_key(line)
    except asyncssh.KeyImportError:
        raise UsageError("--host-key: not an OpenSSH public key line ('TYPE BASE64 [comment]')") from None
    parts = line.split()
    return f"{parts[0]} {parts[1]}"


def check_fingerprint(fp: str) -> str:
    """A 'SHA256:…' fingerprint as ssh-keygen -lf prints it, or a usage error."""
    if not re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", fp.strip()):
        raise UsageError("--fingerprint: expected 'SHA256:' and 43 base64 characters, as ssh-keygen -lf prints")
    return fp.strip()


def known_hosts_keys(path: Path, host: str, port: int) -> list[str]:
    """The host keys a known_hosts file holds for ``host`` and ``port``, as 'TYPE BASE64' lines."""
    import asyncssh  # loaded only when a key is checked: the CLI starts faster

    try:
        known = asyncssh.import_known_hosts(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"--known-hosts {path}: cannot read ({type(exc).__name__})") from None
    keys = known.match(host, "", port)[0]
    if not keys:
        raise UsageError(f"--known-hosts {path}: has no key for {host} port {port}")
    lines = []
    for key in keys:
        text = key.export_public_key().decode().split()
        lines.append(f"{text[0]} {text[1]}")
    return list(dict.fromkeys(lines))
