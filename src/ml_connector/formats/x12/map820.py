"""Mappings for inbound 820s: which element becomes which Epicor field, with transforms.

The same transforms CSV columns have (constant ``value``, ``lookup`` + ``lookup_default``,
``default``) plus ``extract``, a regular expression whose group 1 (or whole match) is kept
(``INV-1001`` -> ``1001``). A ``find`` step (look the value up in Kinetic by another field) is
not run here, where there is no I/O: it is queued on the advice for ``flows/lookups.py``.

Defaults when a flow maps nothing (docs/formats.md lists them):

==========  ==================  ====================================================
target      default source      used as
==========  ==================  ====================================================
CheckRef    TRN02               cash receipt CheckRef (first 30 characters)
CheckNum    TRN02               AP payment CheckNum (must be a whole number)
VendorID    N1.PE.N104          AP payment vendor (must be a Kinetic VendorID)
InvoiceNum  RMR02               each remittance line's invoice (AR: a whole number)
==========  ==================  ====================================================
"""

from __future__ import annotations

import re
from dataclasses import replace

from ...config import X12FieldMap
from ...errors import RecordError
from .remit820 import PaymentAdvice, RemittanceLine

LINE_TARGETS = frozenset({"InvoiceNum"})


def _head_value(advice: PaymentAdvice, source: str) -> str | None:
    if source.startswith(("TRN", "BPR", "CUR")):
        return advice.elements.get(source) or None
    if source.startswith("N1."):
        _, party, what = source.split(".", 2)
        if what.startswith("REF."):
            return advice.references.get(f"{party}.{what[4:]}")
        pick = {
            ("PR", "N102"): advice.payer_name, ("PR", "N103"): advice.payer_id_qualifier,
            ("PR", "N104"): advice.payer_id, ("PE", "N102"): advice.payee_name,
            ("PE", "N103"): advice.payee_id_qualifier, ("PE", "N104"): advice.payee_id,
        }  # fmt: skip
        return pick.get((party, what))
    if source.startswith("REF."):
        return advice.references.get(source[4:])
    return None


def _line_value(line: RemittanceLine, source: str) -> str | None:
    if source.startswith("RMR.REF."):
        qualifier = source[8:]
        return next((v for q, v in line.references if q == qualifier), None)
    index = int(source[3:])  # RMR01..RMR08
    return line.raw[index - 1] if index <= len(line.raw) and line.raw[index - 1] else None


def transform(spec: X12FieldMap, raw: str | None, where: str, target: str) -> str | None:
    """One value through value/extract/lookup/default; a value that cannot be mapped is a RecordError."""
    if spec.value is not None:
        return spec.value
    value = raw.strip() if raw else None
    if value and spec.extract is not None:
        m = re.search(spec.extract, value)
        if m is None:
            raise RecordError(f"{where}: {spec.source} {value!r} does not match extract {spec.extract!r} ({target})")
        value = m.group(1) if m.groups() and m.group(1) is not None else m.group(0)
    if value and spec.lookup is not None:
        if value in spec.lookup:
            value = spec.lookup[value]
        elif spec.lookup_default is not None:
            value = spec.lookup_default
        else:
            raise RecordError(f"{where}: {spec.source} {value!r} is not in the lookup table ({target})")
    if not value:
        value = spec.default
    return value


def apply_mapping(advice: PaymentAdvice, mapping: dict[str, X12FieldMap], where: str) -> PaymentAdvice:
    """The advice with mapped values in the places the poster reads; queues ``find`` look-ups.

    Head targets: CheckRef/CheckNum -> ``trace_number``, VendorID -> ``payee_id``.
    Line target: InvoiceNum -> each line's ``invoice_num``.
    """
    if not mapping:
        return advice
    out = replace(advice, lines=list(advice.lines), mapped=dict(advice.mapped), lookups=list(advice.lookups),
                  lookup_errors=list(advice.lookup_errors), warnings=list(advice.warnings))  # fmt: skip
    for target, spec in mapping.items():
        if target in LINE_TARGETS:
            if spec.source is not None and not spec.source.startswith("RMR"):
                raise RecordError(f"{where}: mapping {target}: source {spec.source} is not in the RMR loop")
            for n, line in enumerate(out.lines):
                at = f"{where}: RMR at position {line.position}"
                raw = _line_value(line, spec.source) if spec.source else None
                value = transform(spec, raw, at, target)
                if value is None:
                    raise RecordError(f"{at}: {target} is empty (source {spec.source}, no default)")
                out.lines[n] = replace(line, invoice_num=value)
                if spec.find is not None:
                    out.lookups.append((target, value, n))
            continue
        if spec.source is not None and spec.source.startswith("RMR"):
            raise RecordError(f"{where}: mapping {target}: source {spec.source} is per line, {target} is per payment")
        value = transform(spec, _head_value(advice, spec.source) if spec.source else None, where, target)
        if value is None:
            raise RecordError(f"{where}: {target} is empty (source {spec.source}, no default)")
        out.mapped[target] = value
        if target in ("CheckRef", "CheckNum"):
            out.trace_number = value
        elif target == "VendorID":
            out.payee_id = value
        if spec.find is not None:
            out.lookups.append((target, value, None))
    return out
