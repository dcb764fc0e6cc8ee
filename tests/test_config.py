from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml_connector.config import (
    CsvFormat,
    FixedWidthFormat,
    InboundFlow,
    OutboundFlow,
    json_schema,
    load_flows,
    parse_flows,
)
from ml_connector.errors import ConfigError

GOOD = """\
flows:
  invoices-to-partner:
    direction: outbound
    schedule: "0 19 * * 1-5"
    timezone: America/Chicago
    epicor: kinetic-prod
    entity: ap-invoices
    cursor: SysRevID
    filter: "Posted eq true"
    sftp: logistics-partner
    folder: /outbound
    filename: "invoices_{now:%Y%m%d_%H%M%S}.csv"
    format:
      type: csv
      columns:
        - {header: Vendor, field: VendorNumVendorID}
        - {header: Invoice, field: InvoiceNum}
        - {header: Amount, field: InvoiceAmt, format: "0.00", type: decimal}
  vendors-fw:
    direction: inbound
    sftp: logistics-partner
    epicor: kinetic-prod
    entity: vendors
    folder: /inbound
    pattern: "*.txt"
    format:
      type: fixed-width
      record_type: {field: RecType, start: 1, length: 1}
      records:
        - code: H
          role: header
          columns: [{field: BatchID, start: 2, length: 10}]
        - code: D
          columns:
            - {field: VendorID, start: 2, length: 8}
            - {field: Name, start: 10, length: 30}
  remittance-in:
    direction: inbound
    schedule: "*/15 * * * *"
    sftp: logistics-partner
    folder: /inbound
    pattern: "*.820"
    archive_folder: /archive
    error_folder: /error
    ack_folder: /acks
    format: {type: x12, set: "820"}
    epicor: kinetic-prod
    entity: cash-receipts
    constants: {GroupID: CASH01}
"""


def test_posting_group_is_required_for_grouped_entities() -> None:
    text = GOOD.replace("    constants: {GroupID: CASH01}\n", "")
    with pytest.raises(ConfigError, match=r"flow 'remittance-in'.*constants\.GroupID"):
        parse_flows(text)


def test_good_file_parses_into_typed_models() -> None:
    flows = parse_flows(GOOD).flows
    out = flows["invoices-to-partner"]
    assert isinstance(out, OutboundFlow)
    assert isinstance(out.format, CsvFormat)
    assert out.format.columns[2].type == "decimal"
    assert out.cursor_field == "SysRevID"
    fw = flows["vendors-fw"]
    assert isinstance(fw, InboundFlow) and isinstance(fw.format, FixedWidthFormat)
    assert fw.format.records[1].columns[1].length == 30
    assert fw.concurrency == 4  # explicit default
    assert flows["remittance-in"].format.type == "x12"


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_flows(text, source="flows.yaml")
    return str(info.value)


def test_error_names_file_line_flow_and_key() -> None:
    bad = GOOD.replace("{field: Name, start: 10, length: 30}", "{field: Name, start: 0, length: 30}")
    msg = _error(bad)
    assert "flows.yaml:" in msg
    assert "flow 'vendors-fw': format.records[1].columns[1].start: must be >= 1" in msg
    line = int(msg.split(":")[1])
    assert "start: 0" in bad.splitlines()[line - 1]


def test_issue_example_columns_index() -> None:
    text = """\
flows:
  x:
    direction: outbound
    epicor: e
    sftp: s
    entity: vendors
    folder: /out
    format:
      type: fixed-width
      columns:
        - {field: A, start: 1, length: 2}
        - {field: B, start: 3, length: 2}
        - {field: C, start: 0, length: 2}
"""
    msg = _error(text)
    assert "flows.yaml:13: flow 'x': format.columns[2].start: must be >= 1" in msg


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('schedule: "0 19 * * 1-5"', 'schedule: "every day"'),
            "schedule: 'every day' is not a valid cron",
        ),
        (("timezone: America/Chicago", "timezone: Mars/Olympus"), "timezone: unknown time zone"),
        (
            ("entity: ap-invoices", "entity: customers"),
            "flow 'invoices-to-partner': entity: unknown entity 'customers' (entities: vendors, ap-invoices,",
        ),
        (("folder: /outbound", "folder: outbound"), "folder: must be an absolute remote path"),
        (("cursor: SysRevID", "cursr: SysRevID"), "cursr: is not a known key"),
        (("      type: csv", "      type: xml"), "flow 'invoices-to-partner': format"),
        (
            ("    epicor: kinetic-prod\n    entity: ap-invoices", "    entity: ap-invoices"),
            "epicor: is required",
        ),
    ],
)
def test_located_errors(change: tuple[str, str], expected: str) -> None:
    assert change[0] in GOOD
    msg = _error(GOOD.replace(change[0], change[1], 1))
    assert expected in msg
    assert msg.startswith("flows.yaml:")


def test_all_problems_reported_at_once() -> None:
    bad = GOOD.replace("timezone: America/Chicago", "timezone: Nowhere/Land").replace(
        'pattern: "*.820"', 'pattern: "*.820"\n    concurrency: 0'
    )
    msg = _error(bad)
    assert "invoices-to-partner" in msg and "remittance-in" in msg
    assert "concurrency: must be >= 1" in msg


def test_invalid_yaml_names_line() -> None:
    msg = _error("flows:\n  a: [1, 2\n  b: 3\n")
    assert msg.startswith("flows.yaml:") and "invalid YAML" in msg


def test_yaml_object_tags_are_refused() -> None:
    msg = _error("flows: !!python/object/apply:os.system ['echo pwned']\n")
    assert "invalid YAML" in msg


def test_x12_delimiters_must_differ() -> None:
    bad = GOOD.replace(
        'format: {type: x12, set: "820"}',
        'format: {type: x12, set: "820", partner: {element_separator: "~"}}',
    )
    assert "delimiters must all differ" in _error(bad)


def test_fixed_width_needs_positions() -> None:
    bad = GOOD.replace("{field: BatchID, start: 2, length: 10}", "{field: BatchID}")
    assert "fixed-width columns need start and length" in _error(bad)


def test_load_flows_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_flows(tmp_path / "flows.yaml")


def test_empty_and_starter_files_are_valid(tmp_path: Path) -> None:
    from ml_connector.home import STARTER_FLOWS

    assert parse_flows("").flows == {}
    assert parse_flows("flows:\n").flows == {}
    assert parse_flows(STARTER_FLOWS).flows == {}
    # The commented examples, uncommented and appended to the starter file (what `cat >>` does), are valid.
    examples = "\n".join(line[1:] for line in STARTER_FLOWS.splitlines() if line.startswith("#   "))
    appended = STARTER_FLOWS + examples + "\n"
    assert set(parse_flows(appended).flows) == {"vendors-to-partner", "remittance-in"}


def test_appending_after_an_inline_empty_mapping_is_a_located_plain_error() -> None:
    msg = _error("flows: {}\n  vendors-out:\n    direction: outbound\n")
    assert msg.startswith("flows.yaml:2:3: invalid YAML:")
    assert "indentation" in msg and "flows: {}" in msg
    assert "<block" not in msg  # no parser jargon


def test_yaml_syntax_errors_read_like_located_errors() -> None:
    assert _error("flows:\n\tv: 1\n").startswith("flows.yaml:2:1: invalid YAML: a tab character")
    assert _error("flows:\n  v:\n    folder: a: b\n").startswith("flows.yaml:3:14: invalid YAML: a ':'")


def test_a_flow_defined_twice_is_refused_naming_both_lines() -> None:
    text = GOOD + "  invoices-to-partner:\n    direction: outbound\n"
    msg = _error(text)
    first = GOOD.splitlines().index("  invoices-to-partner:") + 1
    assert f"'invoices-to-partner' is defined twice (first at line {first})" in msg
    assert msg.startswith(f"flows.yaml:{len(GOOD.splitlines()) + 1}:3:")


def test_any_duplicate_key_is_refused() -> None:
    msg = _error(GOOD.replace("    folder: /outbound\n", "    folder: /outbound\n    folder: /elsewhere\n", 1))
    assert "'folder' is defined twice" in msg


@pytest.mark.parametrize("schedule", ["0 0 19 * * 1-5 2027", "* * * *", "0"])
def test_schedule_needs_five_fields(schedule: str) -> None:
    msg = _error(GOOD.replace('schedule: "0 19 * * 1-5"', f'schedule: "{schedule}"', 1))
    assert "needs 5 fields" in msg and "schedule:" in msg


@pytest.mark.parametrize("schedule", ["0 19 * * MON-FRI", "@daily", "*/15 * * * *", "* * * * * */2"])
def test_five_field_and_alias_schedules_are_valid(schedule: str) -> None:
    parse_flows(GOOD.replace('schedule: "0 19 * * 1-5"', f'schedule: "{schedule}"', 1))


def test_unknown_override_and_omit_fields_are_refused_at_validate_with_location() -> None:
    text = GOOD.replace(
        "    format:\n",
        "    format:\n      overrides:\n        InvoiceAmnt: {header: Amount}\n      omit: [InvoiceNun]\n",
        1,
    )
    msg = _error(text)
    line = text.splitlines().index("        InvoiceAmnt: {header: Amount}") + 1
    assert f"flows.yaml:{line}: flow 'invoices-to-partner': format.overrides.InvoiceAmnt:" in msg
    assert "did you mean 'InvoiceAmt'?" in msg
    assert "format.omit[0]: 'InvoiceNun'" in msg and "did you mean 'InvoiceNum'?" in msg


def test_json_schema_describes_both_directions() -> None:
    schema = json_schema()
    text = json.dumps(schema)
    assert schema["title"] == "ml-connector flows.yaml"
    assert "OutboundFlow" in text and "InboundFlow" in text and "CsvFormat" in text


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md is generated from the models: regenerate it when they change."""
    from pathlib import Path

    from ml_connector.reference import EXAMPLE, render

    doc = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert doc.read_text() == render(), "run: python -m ml_connector.reference > docs/configuration.md"
    assert len(parse_flows(EXAMPLE).flows) == 2  # the example in the reference is valid


def test_configuration_reference_has_no_python_repr_leftovers() -> None:
    from ml_connector.reference import render

    doc = render()
    for leftover in ("']", "['", "Literal", "typing.", "NoneType", "<class"):
        assert leftover not in doc, leftover
    assert "| `align` | left / right \\| None |" in doc
    assert "5 fields" in doc and "@daily" in doc  # the schedule rule the validator applies
    role = next(line for line in doc.splitlines() if line.startswith("| `role`"))
    assert "never posted" in role  # roles are read (docs/formats.md)


def test_flow_entities_and_their_rules_come_from_the_registry() -> None:
    """A flow may name exactly the registry's entities with a recipe; grouped ones need a GroupID."""
    from ml_connector.config import OutboundFlow
    from ml_connector.kinetic.entities import ENTITIES, flow_entities

    assert set(flow_entities()) == {n for n, e in ENTITIES.items() if e.recipe_module}
    assert "ar-invoices" not in flow_entities()  # lookup-only
    assert {n for n, e in ENTITIES.items() if e.grouped} == {"ap-invoices", "ap-payments", "cash-receipts"}
    schema = OutboundFlow.model_json_schema()["properties"]["entity"]
    assert schema["enum"] == list(flow_entities())
