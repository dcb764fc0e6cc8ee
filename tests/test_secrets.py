from __future__ import annotations

import logging
import os
import pickle
import traceback
from pathlib import Path

import pytest

from ml_connector.errors import MasterKeyError, SecretDecryptError
from ml_connector.secrets import (
    MASTER_KEY_ENV,
    Keyring,
    Secret,
    encode_key,
    generate_key,
    key_id_of,
    load_keyring,
    write_key_file,
)

CANARY = "canary-Zq7xW2-secret"


def test_secret_masks_itself_everywhere() -> None:
    s = Secret(CANARY)
    assert CANARY not in repr(s)
    assert CANARY not in str(s)
    assert CANARY not in f"{s} {s!r} {s:>30}"
    assert CANARY not in repr({"password": s, "items": [s]})
    assert s.reveal() == CANARY
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_secret_masked_in_traceback_with_locals() -> None:
    def fail(password: Secret) -> None:
        raise RuntimeError("boom")

    try:
        fail(Secret(CANARY))
    except RuntimeError as exc:
        text = "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    assert "boom" in text and "password" in text
    assert CANARY not in text


def test_seal_open_round_trip_and_row_binding(keyring: Keyring) -> None:
    key_id, blob = keyring.seal(b"hunter2-plaintext", context="connections|row-1|settings_ct")
    assert b"hunter2" not in blob
    assert keyring.open(key_id, blob, context="connections|row-1|settings_ct") == b"hunter2-plaintext"
    with pytest.raises(SecretDecryptError, match="copied from another row"):
        keyring.open(key_id, blob, context="connections|row-2|settings_ct")
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(SecretDecryptError):
        keyring.open(key_id, bytes(tampered), context="connections|row-1|settings_ct")
    with pytest.raises(SecretDecryptError, match="malformed"):
        keyring.open(key_id, b"\x01short", context="connections|row-1|settings_ct")


def test_nonces_differ(keyring: Keyring) -> None:
    a = keyring.seal(b"same", context="c")[1]
    b = keyring.seal(b"same", context="c")[1]
    assert a != b


def test_unknown_key_id_names_the_key(keyring: Keyring) -> None:
    other = Keyring((generate_key(),), source="other.key")
    key_id, blob = keyring.seal(b"x", context="c")
    with pytest.raises(MasterKeyError, match=key_id):
        other.open(key_id, blob, context="c")


def test_multi_key_ring_decrypts_with_older_keys() -> None:
    old, new = generate_key(), generate_key()
    kid, blob = Keyring((old,), "f").seal(b"v", context="c")
    ring = Keyring((new, old), "f")
    assert ring.active_id == key_id_of(new)
    assert ring.open(kid, blob, context="c") == b"v"


def test_key_file_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    keys = [generate_key(), generate_key()]
    write_key_file(path, keys)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    ring = load_keyring(path, environ={})
    assert ring.keys == tuple(keys)


def test_key_file_too_open_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    write_key_file(path, [generate_key()])
    os.chmod(path, 0o644)
    with pytest.raises(MasterKeyError, match="too open"):
        load_keyring(path, environ={})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not base64 at all!!\n", "line 1"),
        (encode_key(b"short") + "\n", "32 bytes"),
        ("# only a comment\n", "holds no key"),
    ],
)
def test_corrupt_key_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "master.key"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(MasterKeyError, match=message):
        load_keyring(path, environ={})


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="does not exist"):
        load_keyring(tmp_path / "nope.key", environ={})


def test_env_key_wins_over_file(tmp_path: Path) -> None:
    key = generate_key()
    ring = load_keyring(tmp_path / "absent.key", environ={MASTER_KEY_ENV: encode_key(key)})
    assert ring.keys == (key,)
    assert ring.source == MASTER_KEY_ENV


def test_log_of_revealed_secret_is_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    from ml_connector.logs import RedactingFilter

    s = Secret(CANARY)
    logger = logging.getLogger("ml_connector.test.child")
    handler_records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            handler_records.append(self.format(record))

    h = Collect()
    h.addFilter(RedactingFilter())
    parent = logging.getLogger("ml_connector")
    parent.addHandler(h)
    try:
        logger.warning("value is %s", s.reveal())
    finally:
        parent.removeHandler(h)
    assert handler_records and CANARY not in handler_records[0]
    assert "********" in handler_records[0]
