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
from source_dixa.exports_api import ConversationExport, MessageExport
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


EXPECTED_KEYS = {
    "conversation_export": "id",
    "message_export": "id",
    "agents": "id",
    "end_users": "id",
    "teams": "id",
    "team_members": ["team_id", "id"],
    "queues": "id",
    "queue_members": ["queue_id", "agentId"],
    "tags": "id",
    "custom_attributes": "id",
    "contact_endpoints": ["_type", "endpoint"],
    "agent_presence": ["userId", "requestTime"],
    "activity_logs": "id",
}


def test_streams_are_the_thirteen_with_their_keys_and_one_budget_per_service() -> None:
    streams = _source().streams(ConfigBuilder().build())
    assert {s.name: s.primary_key for s in streams} == EXPECTED_KEYS
    # private; the pacing's effect is tested end to end too
    budgets = {s.name: id(s._http_client._api_budget) for s in streams}  # type: ignore[attr-defined]
    exports = {budgets["conversation_export"], budgets["message_export"]}
    dixa_api = {budget for name, budget in budgets.items() if not name.endswith("_export")}
    assert len(exports) == 1
    assert len(dixa_api) == 1
    assert exports != dixa_api
    assert [type(s) for s in streams][:2] == [ConversationExport, MessageExport]


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


def test_check_makes_one_small_request_per_service() -> None:
    with rm.Mocker() as mocker:
        mocker.get(f"{API_URL}/v1/conversation_export", json=[])
        mocker.get(f"{API_URL}/v1/teams", json={"data": []})
        ok, error = _source().check_connection(LOGGER, ConfigBuilder().build())
        params = mocker.request_history[0].qs
        paths = [request.path for request in mocker.request_history]
        dixa_api_auth = mocker.request_history[1].headers["Authorization"]
    assert (ok, error) == (True, None)
    assert paths == ["/v1/conversation_export", "/v1/teams"]
    assert int(params["updated_before"][0]) - int(params["updated_after"][0]) <= 60_001
    # The Dixa API takes the token raw, with no "Bearer" (dixa-api.md §1).
    assert dixa_api_auth == ConfigBuilder().build()["api_token"]


def test_check_fails_when_the_dixa_api_refuses_the_token() -> None:
    with rm.Mocker() as mocker:
        mocker.get(f"{API_URL}/v1/conversation_export", json=[])
        mocker.get(f"{API_URL}/v1/teams", status_code=401, json={"message": "Unauthorized"})
        with pytest.raises(AirbyteTracedException) as caught:
            _source().check_connection(LOGGER, ConfigBuilder().build())
    assert caught.value.failure_type == FailureType.config_error
    assert (caught.value.message or "").startswith("The Dixa API refused the API token (HTTP 401).")
    assert '"Dixa API" version' in (caught.value.message or "")


def test_check_passes_with_a_warning_when_the_dixa_api_forbids_the_token(caplog: pytest.LogCaptureFixture) -> None:
    with rm.Mocker() as mocker:
        mocker.get(f"{API_URL}/v1/conversation_export", json=[])
        mocker.get(f"{API_URL}/v1/teams", status_code=403, json={"message": "Forbidden"})
        with caplog.at_level(logging.WARNING):
            ok, error = _source().check_connection(LOGGER, ConfigBuilder().build())
    assert (ok, error) == (True, None)
    assert any("account-wide streams" in r.message and r.levelno == logging.WARNING for r in caplog.records)


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
        mocker.get(f"{API_URL}/v1/teams", json={"data": []})
        _source().check_connection(LOGGER, ConfigBuilder().with_token("  padded-token-123456\n").build())
        sent = mocker.request_history[0].headers["Authorization"]
    assert sent == "Bearer padded-token-123456"
    assert "padded-token-123456" not in filter_secrets(f"headers: {sent}")
