"""The operator console: a web dashboard over the ledgers, with audited actions (issue 16)."""
