"""The Dixa API streams' JSON schemas against canned records shaped as the connector emits them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SCHEMAS = Path(__file__).resolve().parent.parent / "source_dixa" / "schemas"
RESPONSES = Path(__file__).parent / "resource" / "http" / "response"

PRIMARY_KEYS: dict[str, list[str]] = {
    "agents": ["id"],
    "end_users": ["id"],
    "teams": ["id"],
    "team_members": ["team_id", "id"],
    "queues": ["id"],
    "queue_members": ["queue_id", "agentId"],
    "tags": ["id"],
    "custom_attributes": ["id"],
    "contact_endpoints": ["_type", "endpoint"],
    "agent_presence": ["userId", "requestTime"],
    "activity_logs": ["id"],
}

# Rewritten by the connector to plain ISO-8601 UTC ending in "Z" (dixa-api.md §4).
TIMESTAMPS: dict[str, list[str]] = {
    "agents": ["createdAt"],
    "end_users": ["createdAt"],
    "custom_attributes": ["createdAt", "updatedAt"],
    "agent_presence": ["requestTime", "lastSeen"],
    "activity_logs": ["activityTimestamp"],
}

CURSORS = {"activity_logs": "activityTimestamp"}

STREAMS = sorted(PRIMARY_KEYS)


def _schema(stream: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{stream}.json").read_text(encoding="utf-8"))
    return schema


def _records(stream: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads((RESPONSES / f"{stream}.json").read_text(encoding="utf-8"))
    return records


def _types(field: dict[str, Any]) -> list[str]:
    declared = field["type"]
    return [declared] if isinstance(declared, str) else list(declared)


def _objects(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema in `schema`, nested ones and array items included, with its path."""
    if "object" in _types(schema):
        yield path or "<top>", schema
        for name, field in schema.get("properties", {}).items():
            yield from _objects(field, f"{path}.{name}")
    items = schema.get("items")
    if isinstance(items, dict) and "type" in items:
        yield from _objects(items, f"{path}[]")


@pytest.mark.parametrize("stream", STREAMS)
def test_schema_validates_canned_records_and_stays_open(stream: str) -> None:
    schema = _schema(stream)
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is True
    records = _records(stream)
    assert 2 <= len(records) <= 4
    validator = jsonschema.Draft7Validator(schema)
    for record in records:
        validator.validate(record)


@pytest.mark.parametrize("stream", STREAMS)
def test_primary_key_is_declared_non_nullable_and_present(stream: str) -> None:
    properties = _schema(stream)["properties"]
    for key in PRIMARY_KEYS[stream]:
        assert properties[key]["type"] == "string", (stream, key)
    for record in _records(stream):
        assert all(isinstance(record.get(key), str) and record[key] for key in PRIMARY_KEYS[stream]), record


@pytest.mark.parametrize("stream", STREAMS)
def test_every_other_field_is_nullable_and_nested_objects_stay_open(stream: str) -> None:
    schema = _schema(stream)
    not_null = set(PRIMARY_KEYS[stream]) | ({CURSORS[stream]} if stream in CURSORS else set())
    for name, field in schema["properties"].items():
        if name not in not_null:
            assert "null" in _types(field), (stream, name)
    for path, node in _objects(schema):
        assert node.get("additionalProperties") is True, (stream, path)


@pytest.mark.parametrize("stream", STREAMS)
def test_timestamps_are_declared_and_emitted_as_utc(stream: str) -> None:
    schema = _schema(stream)
    fields = TIMESTAMPS.get(stream, [])
    for name in fields:
        field = schema["properties"][name]
        assert "string" in _types(field)
        assert field["format"] == "date-time"
        assert field["airbyte_type"] == "timestamp_with_timezone"
    for record in _records(stream):
        for name in fields:
            value = record.get(name)
            if value is None:
                continue
            assert value.endswith("Z") and "[" not in value, (stream, name, value)
            assert datetime.fromisoformat(value).utcoffset() is not None
    # No other field claims to be a timestamp: Dixa's other time texts are passed through as written.
    top_level = {name for name, field in schema["properties"].items() if "format" in field}
    nested = [
        f"{path}.{name}"
        for path, node in _objects(schema)
        if path != "<top>"
        for name, field in node.get("properties", {}).items()
        if "format" in field
    ]
    assert top_level == set(fields)
    assert nested == []


def test_the_activity_log_cursor_is_a_non_nullable_timestamp() -> None:
    properties = _schema("activity_logs")["properties"]
    assert properties["activityTimestamp"]["type"] == "string"
    assert properties["conversationId"]["type"] == ["null", "integer"]


def test_phone_numbers_are_strings() -> None:
    cases = {
        "agents": ["phoneNumber"],
        "end_users": ["phoneNumber"],
        "team_members": ["phoneNumber"],
        "contact_endpoints": ["number", "endpoint"],
    }
    for stream, fields in cases.items():
        properties = _schema(stream)["properties"]
        for name in fields:
            assert "integer" not in _types(properties[name]) and "string" in _types(properties[name])
