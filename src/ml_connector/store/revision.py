"""The schema revision this ml-connector writes (a leaf: no SQLAlchemy, no Alembic).

``SCHEMA_HEAD`` is the newest revision in ``migrations/versions``; a test holds it equal to
Alembic's head. Opening a store whose schema is already here needs no Alembic import or script
scan, and ``status`` reads a SQLite home with the standard library when the schema is here.
"""

from __future__ import annotations

SCHEMA_HEAD = "0006"
