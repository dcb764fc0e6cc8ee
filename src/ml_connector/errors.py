"""One error tree for ml-connector; retryability is part of the type.

    MLConnectorError                 base; ``exit_code`` is what the CLI exits with
    ├── UsageError (2)               bad command-line use (e.g. a secret passed as an argument)
    ├── ConfigError (2)              flows.yaml, home folder or settings are wrong
    ├── MasterKeyError (2)           master key missing, corrupt, too open, or unknown key id
    ├── SecretDecryptError (2)       a ciphertext fails authentication (tampered, moved, wrong key)
    ├── StoreError (2)               database unusable (e.g. schema newer than this program)
    ├── NotFoundError (2)            an unknown connection, flow, file or run
    ├── ConnectError (3)             connection or authentication failure to Epicor or SFTP
    │   ├── HostKeyError (3)         unknown or changed SSH host key (``changed`` is alert-level)
    │   └── ScopeDeniedError (3)     the API key's access scope lacks one Kinetic service
    ├── TransientError (1)           retry with backoff (connect reset, timeout, 429, 5xx)
    │   └── UnreachableError (3)     could not connect at all (DNS, refused, TLS, connect timeout)
    ├── UnknownOutcomeError (1)      a write may or may not have happened: settle by lookup first
    ├── FatalError (1)               stop the run; the next run resumes
    └── RecordError (1)              park this record, carry on with the rest of the file
        └── PostedRecordError (1)    the record is already posted in Kinetic: read-only, never retried

Messages never contain secret values: callers name the field, not its content.
"""

from __future__ import annotations


class MLConnectorError(Exception):
    """Base class of every error ml-connector raises on purpose."""

    exit_code: int = 1


class UsageError(MLConnectorError):
    """The command line was used wrongly."""

    exit_code = 2


class ConfigError(MLConnectorError):
    """Configuration (flows.yaml, settings, home folder) is invalid."""

    exit_code = 2


class MasterKeyError(MLConnectorError):
    """The master key is missing, malformed, too widely readable, or not the one needed."""

    exit_code = 2


class SecretDecryptError(MLConnectorError):
    """A stored ciphertext failed authentication."""

    exit_code = 2


class StoreError(MLConnectorError):
    """The database cannot be used as it is."""

    exit_code = 2


class NotFoundError(MLConnectorError):
    """A named object (connection, flow, file, run) does not exist."""

    exit_code = 2


class ConnectError(MLConnectorError):
    """A remote system could not be reached or refused our credentials."""

    exit_code = 3


class HostKeyError(ConnectError):
    """The server's host key is not the pinned one; ``changed`` means a pin existed and differs."""

    def __init__(self, message: str, *, seen_fingerprint: str, changed: bool) -> None:
        super().__init__(message)
        self.seen_fingerprint = seen_fingerprint
        self.changed = changed


class ScopeDeniedError(ConnectError):
    """The API key authenticates but its access scope does not allow one service."""

    def __init__(self, message: str, *, service: str) -> None:
        super().__init__(message)
        self.service = service


class TransientError(MLConnectorError):
    """A failure that is expected to go away; retried with backoff within a budget."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnreachableError(TransientError):
    """Nothing reached the server (DNS, refused, TLS handshake, connect timeout): retried like any
    transient failure, but a run that ends on it is a connection failure (exit code 3)."""

    exit_code = 3


class UnknownOutcomeError(MLConnectorError):
    """A write was sent and no answer came back (timeout, 500, cut connection).

    Never retried blindly: the caller looks the record up by its natural key first.
    """


class FatalError(MLConnectorError):
    """The run cannot go on; ledgers stay consistent and the next run resumes."""


class RecordError(MLConnectorError):
    """One record is bad; it is parked with this reason and the file goes on."""


class PostedRecordError(RecordError):
    """The record is posted in Kinetic and can no longer be maintained; retrying cannot help."""
