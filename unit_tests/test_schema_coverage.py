"""Every field the emulator sends is declared in its stream's schema.

Why it matters: PyAirbyte's caches keep only the columns a stream's schema declares (PyAirbyte 0.71.3,
airbyte/shared/sql_processor.py:906-908 for Postgres and the other pandas-loaded caches; DuckDB reads the declared
columns only), so a field Dixa sends but we do not declare is lost without a word. Nested objects are checked too
wherever the schema declares their properties: PyAirbyte keeps those whole as JSON, but the schema is what every
destination types them by.

Which streams: every stream the connector discovers (the same catalog PyAirbyte gets), each compared with the
emulator's `records(name)`. Nothing is skipped: a discovered stream the emulator does not serve fails, and so does
one it serves no records for, so no stream drops out of this check silently.

Fields named `emulator_*` are the emulator's own canaries (test_emulator.py: undocumented fields the connector must
pass through), not Dixa data, so they are not expected in the schemas.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Optional

import pytest

from integration_tests.emulator import DixaEmulator, EmulatorConfig
from source_dixa.source import SourceDixa

CANARY_PREFIX = "emulator_"
CONFIG = {
    "api_token": "schema-coverage-token",
    "start_date": "2024-01-01",
    "api_url": "http://127.0.0.1:9",
    "dixa_api_url": "http://127.0.0.1:9",
}


def discovered_schemas() -> dict[str, dict[str, Any]]:
    catalog = SourceDixa().discover(logging.getLogger("schema-coverage"), CONFIG)
    return {stream.name: dict(stream.json_schema) for stream in catalog.streams}


SCHEMAS = discovered_schemas()


def _declared_properties(schema: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The properties a schema node declares (across anyOf/oneOf alternatives); None for a free-form object."""
    found: Optional[dict[str, Any]] = None
    for node in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        if isinstance(node, dict) and isinstance(node.get("properties"), dict):
            found = {**(found or {}), **node["properties"]}
    return found


def undeclared_fields(value: Any, schema: dict[str, Any], path: str = "") -> Iterator[str]:
    """Paths of the fields in `value` that `schema` does not declare, where it declares any.

    >>> schema = {"properties": {"a": {"type": "object", "properties": {"b": {}}}, "c": {"items": {"properties": {}}}}}
    >>> list(undeclared_fields({"a": {"b": 1, "x": 2}, "c": [{"y": 3}], "z": 4, "emulator_n": 5}, schema))
    ['a.x', 'c[].y', 'z']
    """
    if isinstance(value, dict):
        declared = _declared_properties(schema)
        if declared is None:
            return
        for name, item in value.items():
            if name.startswith(CANARY_PREFIX):
                continue
            where = f"{path}.{name}" if path else name
            if name in declared:
                yield from undeclared_fields(item, declared[name], where)
            else:
                yield where
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                yield from undeclared_fields(item, items, f"{path}[]")


@pytest.fixture(scope="module")
def emulator() -> DixaEmulator:
    # Default size (500 conversations): optional fields need many records to show up at all. Not started: the
    # ground truth is in memory.
    return DixaEmulator(EmulatorConfig())


def served_records(emulator: DixaEmulator, stream: str) -> list[dict[str, Any]]:
    try:
        return list(emulator.records(stream))
    except KeyError as error:
        pytest.fail(f"the connector discovers {stream!r} but the emulator does not serve it: {error}")


@pytest.mark.parametrize("stream", sorted(SCHEMAS))
def test_every_field_the_emulator_sends_is_declared(stream: str, emulator: DixaEmulator) -> None:
    records = served_records(emulator, stream)
    assert records, f"the emulator served no {stream} records, so nothing was checked"
    missing: dict[str, int] = {}
    for record in records:
        for path in undeclared_fields(record, SCHEMAS[stream]):
            missing[path] = missing.get(path, 0) + 1
    assert not missing, (
        f"{stream}: fields the emulator sends but source_dixa/schemas/{stream}.json does not declare "
        f"(PyAirbyte would drop them): {dict(sorted(missing.items()))}"
    )


def test_the_check_finds_an_undeclared_field_at_the_top_and_nested() -> None:
    schema = SCHEMAS["conversation_export"]
    record = {"id": 1, "brand_new": 1, "ratings": [{"rating_score": 5, "rating_new": 1}], "emulator_extra_field": {}}
    assert list(undeclared_fields(record, schema)) == ["brand_new", "ratings[].rating_new"]


def test_every_stream_is_discovered() -> None:
    assert {"conversation_export", "message_export"} <= set(SCHEMAS)
    assert all(_declared_properties(schema) for schema in SCHEMAS.values())
