"""Flat-file layouts shared by the format tests and the fuzz harness."""

from __future__ import annotations

from ml_connector.config import FixedWidthFormat

# A batch file: header H (batch date), detail lines D, trailer T (count).
BATCH_FW = FixedWidthFormat.model_validate(
    {
        "type": "fixed-width",
        "record_type": {"field": "RecordType", "start": 1, "length": 1},
        "records": [
            {"code": "H", "role": "header", "columns": [{"field": "BatchDate", "start": 2, "length": 8, "type": "date", "format": "%Y%m%d"}]},
            {"code": "D", "columns": [
                {"field": "VendorID", "start": 2, "length": 8, "required": True},
                {"field": "Name", "start": 10, "length": 20},
                {"field": "InvoiceAmt", "start": 30, "length": 10, "type": "decimal", "implied_decimals": 2, "align": "right", "pad": "0"},
            ]},
            {"code": "T", "role": "trailer", "columns": [{"field": "Count", "start": 2, "length": 6, "type": "int", "align": "right", "pad": "0"}]},
        ],
    }
)  # fmt: skip
