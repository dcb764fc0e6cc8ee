from __future__ import annotations

import io
import logging

from ml_connector.logs import configure_logging, redact_mapping, redact_text
from ml_connector.secrets import Secret


def test_key_value_pairs_are_redacted() -> None:
    text = 'password=abc123 x-api-key: KEY987 Authorization: Bearer eyJabc.def "api_key": "zz9"'
    out = redact_text(text)
    for leaked in ("abc123", "KEY987", "eyJabc.def", "zz9"):
        assert leaked not in out
    assert "password=" in out


def test_redact_mapping_masks_secret_keys_recursively() -> None:
    data = {"Password": "p1", "nested": {"x-api-key": "k1", "ok": "visible"}, "list": ["token=t1"]}
    out = redact_mapping(data)
    assert out["Password"] == "********"
    assert out["nested"]["x-api-key"] == "********"
    assert out["nested"]["ok"] == "visible"
    assert "t1" not in out["list"][0]


def test_handler_filter_covers_child_loggers_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = configure_logging(logging.DEBUG, stream=stream)
    canary = Secret("canary-Traceback-77")
    try:
        try:
            raise ValueError(f"login failed for {canary.reveal()}")
        except ValueError:
            logging.getLogger("ml_connector.deep.child.module").exception("call failed with %s", canary.reveal())
        text = stream.getvalue()
        assert "call failed" in text and "ValueError" in text
        assert "canary-Traceback-77" not in text
    finally:
        logging.getLogger("ml_connector").removeHandler(handler)
