"""Secrets: a masking value type, the master keyring and authenticated encryption.

Stored secrets are sealed with AES-256-GCM under the master key. The associated data binds a
ciphertext to its table, row id, column and key id, so a ciphertext copied into another row (or
read under another key) fails authentication instead of decrypting to the wrong credential.

The master key lives outside the database: in ``$ML_CONNECTOR_HOME/master.key`` (mode 0600) or in
the ``ML_CONNECTOR_MASTER_KEY`` environment variable. The key file may hold several keys, one per
line, the first being the active one; older keys are only there while ``keys rotate`` runs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

# cryptography loads when a key is used, not with this module: the log filter imports REVEALED
# at every command's start.
from .errors import MasterKeyError, SecretDecryptError, UsageError

MASTER_KEY_ENV: Final = "ML_CONNECTOR_MASTER_KEY"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
_FORMAT_VERSION: Final = b"\x01"


class _Registry:
    """Values of secrets revealed in this process, so log handlers can scrub them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        # Very short values would scrub ordinary words out of every log line.
        if len(value) >= 4:
            with self._lock:
                self._values.add(value)

    def values(self) -> list[str]:
        with self._lock:
            return sorted(self._values, key=len, reverse=True)


REVEALED = _Registry()


class Secret:
    """A string that never shows itself in ``repr``, ``str``, f-strings, logs or tracebacks.

    ``reveal()`` is the one way to the value; it registers the value with the log redaction
    filter so that even an accidental log of the revealed string is scrubbed.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value
        REVEALED.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __format__(self, spec: str) -> str:
        return "********"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def key_id_of(key: bytes) -> str:
    """A short public id of a key: a keyed hash, so it says nothing about the key itself."""
    return hashlib.sha256(b"ml-connector key id\x00" + key).hexdigest()[:16]


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode("ascii")


def generate_key() -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise MasterKeyError(f"{where}: not a base64 key") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"{where}: a master key is {KEY_BYTES} bytes, this one is {len(key)}")
    return key


@dataclass(frozen=True)
class Keyring:
    """The master keys in use: ``keys[0]`` encrypts, every key may decrypt."""

    keys: tuple[bytes, ...]
    source: str  # where the keys came from, for messages ("/home/x/master.key" or the env var)

    def __post_init__(self) -> None:
        if not self.keys:
            raise MasterKeyError(f"{self.source}: holds no key")

    @property
    def active_id(self) -> str:
        return key_id_of(self.keys[0])

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id_of(k) for k in self.keys)

    def _key(self, key_id: str) -> bytes:
        for key in self.keys:
            if key_id_of(key) == key_id:
                return key
        raise MasterKeyError(
            f"data was encrypted with key id {key_id}, which is not in {self.source} "
            f"(it holds {', '.join(self.ids)}); restore the right master key"
        )

    def seal(self, plaintext: bytes, *, context: str) -> tuple[str, bytes]:
        """Encrypt under the active key; returns (key id, ciphertext)."""
        key_id = self.active_id
        nonce = os.urandom(NONCE_BYTES)
        aad = _aad(context, key_id)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return key_id, _FORMAT_VERSION + nonce + AESGCM(self.keys[0]).encrypt(nonce, plaintext, aad)

    def open(self, key_id: str, blob: bytes, *, context: str) -> bytes:
        """Decrypt a ciphertext sealed for ``context`` under ``key_id``."""
        key = self._key(key_id)
        if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != _FORMAT_VERSION:
            raise SecretDecryptError(f"{context}: stored ciphertext is malformed")
        nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(key).decrypt(nonce, body, _aad(context, key_id))
        except InvalidTag:
            raise SecretDecryptError(
                f"{context}: ciphertext failed authentication (tampered with, or copied from another row)"
            ) from None


def _aad(context: str, key_id: str) -> bytes:
    return f"ml-connector|{context}|{key_id}".encode()


def parse_key_lines(text: str, source: str) -> Keyring:
    keys: list[bytes] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keys.append(_decode_key(line, f"{source}: line {number}"))
    return Keyring(tuple(keys), source)


def load_keyring(key_file: Path, environ: Mapping[str, str] | None = None) -> Keyring:
    """Load the master keyring from the environment variable or the key file."""
    env = os.environ if environ is None else environ
    if env.get(MASTER_KEY_ENV):
        # Comma-separated in the variable; the first is active.
        return parse_key_lines(env[MASTER_KEY_ENV].replace(",", "\n"), MASTER_KEY_ENV)
    if not key_file.exists():
        raise MasterKeyError(
            f"no master key: {key_file} does not exist and {MASTER_KEY_ENV} is not set (run 'ml-connector init')"
        )
    mode = stat.S_IMODE(key_file.stat().st_mode)
    if mode & 0o077:
        raise MasterKeyError(f"{key_file}: permissions {mode:04o} are too open; run 'chmod 600 {key_file}'")
    try:
        text = key_file.read_text(encoding="ascii")
    except (UnicodeDecodeError, OSError) as exc:
        raise MasterKeyError(f"{key_file}: cannot be read as a key file ({type(exc).__name__})") from None
    return parse_key_lines(text, str(key_file))


def write_key_file(path: Path, keys: Iterable[bytes]) -> None:
    """Atomically replace the key file with these keys (first = active), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    body = "# ml-connector master key: keep this file private and backed up apart from the database\n" + "".join(
        encode_key(k) + "\n" for k in keys
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# --- master-key rotation ---------------------------------------------------------------------


class SealedRows(Protocol):
    """What rotation needs from the store's connection table (``ConnectionStore`` fits)."""

    def rotate(self, old: Keyring, new: Keyring) -> int: ...

    def count_not_under(self, key_id: str) -> int: ...


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: rows re-sealed, the new key's id, the retired ids."""

    rows: int
    new_key_id: str
    retired: tuple[str, ...]
    from_env: bool


def rotate_master_key(old: Keyring, key_file: Path, rows: SealedRows, new_key_out: Path | None = None) -> Rotation:
    """Re-seal every stored secret under a new key, then retire the old one.

    A key from ``ML_CONNECTOR_MASTER_KEY`` cannot be rewritten: the new key goes to the new file
    ``new_key_out`` and the operator updates the variable. A key file gets both keys first, so a
    crash mid-rotation leaves every row readable; the old key leaves the file only when no row
    is still sealed under it.
    """
    from_env = old.source != str(key_file)
    new_key = generate_key()
    if from_env:
        if new_key_out is None:
            raise UsageError(
                "the master key comes from ML_CONNECTOR_MASTER_KEY: give --new-key-out PATH to receive the new key"
            )
        if new_key_out.exists():
            raise UsageError(f"--new-key-out {new_key_out}: already exists; name a new file")
        write_key_file(new_key_out, [new_key])
    else:
        write_key_file(key_file, [new_key, *old.keys])
    both = Keyring((new_key, *old.keys), source=old.source)
    count = rows.rotate(both, both)
    left = rows.count_not_under(key_id_of(new_key))
    if left:
        raise MasterKeyError(f"{left} connection(s) still under an old key; the old key was kept")
    if not from_env:
        write_key_file(key_file, [new_key])
    return Rotation(count, key_id_of(new_key), tuple(old.ids), from_env)
