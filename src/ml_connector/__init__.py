"""ml-connector: Epicor Kinetic <-> SFTP flat files (CSV, fixed-width, X12), with a ledger."""

__version__ = "0.1.0"
