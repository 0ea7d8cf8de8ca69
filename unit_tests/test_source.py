from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests_mock as rm
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_dixa import SourceDixa
from source_dixa.streams import ConversationExport, MessageExport
from unit_tests.config_builder import ConfigBuilder
from unit_tests.conftest import API_URL, NOW_MS

RESPONSES = Path(__file__).parent / "resource" / "http" / "response"
LOGGER = logging.getLogger("test")


def _source() -> SourceDixa:
    return SourceDixa(now_ms=lambda: NOW_MS)


def test_spec_marks_the_token_secret_and_orders_every_visible_field() -> None:
    spec = _source().spec(LOGGER).connectionSpecification
    properties = spec["properties"]
    assert properties["api_token"]["airbyte_secret"] is True
    assert properties["api_url"]["airbyte_hidden"] is True
    assert spec["required"] == ["api_token", "start_date"]
    for name, field in properties.items():
        assert {"title", "description", "order", "examples"} <= set(field), name


def test_spec_accepts_a_config_from_airbytes_earlier_dixa_connector() -> None:
    spec = _source().spec(LOGGER).connectionSpecification
    jsonschema.validate({"api_token": "t", "start_date": "2021-01-01", "batch_size": 31}, spec)


def test_streams_are_both_exports_sharing_one_rate_budget() -> None:
    streams = _source().streams(ConfigBuilder().build())
    assert [type(s) for s in streams] == [ConversationExport, MessageExport]
    budgets = {id(s._http_client._api_budget) for s in streams}  # private; its effect is tested end to end too
    assert len(budgets) == 1


@pytest.mark.parametrize("stream_name", ["conversation_export", "message_export"])
def test_schema_validates_canned_records_and_stays_open(stream_name: str) -> None:
    stream = next(s for s in _source().streams(ConfigBuilder().build()) if s.name == stream_name)
    schema = stream.get_json_schema()
    assert schema["additionalProperties"] is True
    records: list[dict[str, Any]] = json.loads((RESPONSES / f"{stream_name}.json").read_text(encoding="utf-8"))
    for record in records:
        jsonschema.Draft7Validator(schema).validate(record)
    assert schema["properties"][stream.cursor_field]["type"] == "integer"
    assert schema["properties"]["id"]["type"] in ("integer", "string")


def test_check_makes_one_small_request() -> None:
    with rm.Mocker() as mocker:
        mocker.get(f"{API_URL}/v1/conversation_export", json=[])
        ok, error = _source().check_connection(LOGGER, ConfigBuilder().build())
        params = mocker.request_history[0].qs
    assert (ok, error) == (True, None)
    assert mocker.call_count == 1
    assert int(params["updated_before"][0]) - int(params["updated_after"][0]) <= 60_001


def test_check_with_rejected_token_raises_config_error() -> None:
    with rm.Mocker() as mocker:
        mocker.get(f"{API_URL}/v1/conversation_export", status_code=401)
        with pytest.raises(AirbyteTracedException) as caught:
            _source().check_connection(LOGGER, ConfigBuilder().build())
    assert caught.value.failure_type == FailureType.config_error
    assert (caught.value.message or "").startswith("Dixa rejected the API token (HTTP 401).")


@pytest.mark.parametrize("body", ["<html>captive portal</html>", '{"message": "hello"}'])
def test_check_against_something_that_is_not_dixa_is_a_config_error(body: str) -> None:
    with rm.Mocker() as mocker:
        mocker.get(f"{API_URL}/v1/conversation_export", text=body, headers={"Content-Type": "text/html"})
        with pytest.raises(AirbyteTracedException) as caught:
            _source().check_connection(LOGGER, ConfigBuilder().build())
    assert caught.value.failure_type == FailureType.config_error
    assert "answered, but not like the Dixa Exports API" in (caught.value.message or "")


def test_padded_token_is_sent_stripped_and_masked_in_logs() -> None:
    from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets

    with rm.Mocker() as mocker:
        mocker.get(f"{API_URL}/v1/conversation_export", json=[])
        _source().check_connection(LOGGER, ConfigBuilder().with_token("  padded-token-123456\n").build())
        sent = mocker.request_history[0].headers["Authorization"]
    assert sent == "Bearer padded-token-123456"
    assert "padded-token-123456" not in filter_secrets(f"headers: {sent}")
