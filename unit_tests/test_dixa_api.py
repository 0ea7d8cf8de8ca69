from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import requests_mock as rm
from airbyte_cdk.models import FailureType, SyncMode
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_dixa.dixa_api import DixaApiStream, RawTokenAuthenticator
from source_dixa.dixa_api_streams import ActivityLogs, AgentPresence, Agents, ContactEndpoints, TeamMembers
from source_dixa.pacing import AdaptivePacer, Pace
from unit_tests.conftest import API_URL, DAY_MS, NOW_MS, TOKEN


def _stream(cls: type[DixaApiStream], **extra: Any) -> Any:
    pace = Pace("Dixa API", limit=100_000, window_s=1.0, documented=10, floor=1.0)
    return cls(
        dixa_api_url=API_URL,
        authenticator=RawTokenAuthenticator(TOKEN),
        pacer=AdaptivePacer(pace, logging.getLogger("test"), sleep=lambda _s: None),
        max_retries=1,
        sleep=lambda _s: None,
        **extra,
    )


def _read(stream: DixaApiStream, sync_mode: SyncMode = SyncMode.full_refresh) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for stream_slice in stream.stream_slices(sync_mode=sync_mode):
        records.extend(dict(r) for r in stream.read_records(sync_mode, stream_slice=stream_slice))
    return records


@pytest.fixture
def mocker() -> Iterator[rm.Mocker]:
    with rm.Mocker() as mocker:
        yield mocker


def test_pages_are_followed_through_meta_next_with_the_raw_token(mocker: rm.Mocker) -> None:
    mocker.get(
        f"{API_URL}/v1/agents",
        [
            {
                "json": {
                    "data": [{"id": "a", "createdAt": "2021-12-01T12:46:36.581Z[GMT]"}],
                    "meta": {"next": "/v1/agents?pageKey=p2"},
                }
            },
        ],
    )
    mocker.get(f"{API_URL}/v1/agents?pageKey=p2", json={"data": [{"id": "b"}], "meta": {}})
    records = _read(_stream(Agents))
    assert [r["id"] for r in records] == ["a", "b"]
    assert records[0]["createdAt"] == "2021-12-01T12:46:36.581Z"
    first, second = mocker.request_history
    assert first.qs == {"pagelimit": ["1000"]}
    # The next page is asked exactly as Dixa linked it: the opaque key carries the filters.
    assert second.qs == {"pagekey": ["p2"]}
    assert {r.headers["Authorization"] for r in mocker.request_history} == {TOKEN}


@pytest.mark.parametrize(
    "next_link",
    ["http://0.0.0.0:1/v1/agents?pageKey=p2", "https://127.0.0.1:8999/v1/agents?pageKey=p2", "//0.0.0.0/v1/x"],
)
def test_a_next_link_to_another_host_or_scheme_fails_without_a_request(mocker: rm.Mocker, next_link: str) -> None:
    mocker.get(f"{API_URL}/v1/agents", json={"data": [{"id": "a"}], "meta": {"next": next_link}})
    with pytest.raises(AirbyteTracedException) as caught:
        _read(_stream(Agents))
    assert "refusing to send the API token there" in (caught.value.message or "")
    assert mocker.call_count == 1


def test_a_next_link_back_to_the_first_page_is_an_error_not_a_loop(mocker: rm.Mocker) -> None:
    mocker.get(f"{API_URL}/v1/agents", json={"data": [{"id": "a"}], "meta": {"next": "/v1/agents?pageLimit=1000"}})
    with pytest.raises(AirbyteTracedException) as caught:
        _read(_stream(Agents))
    assert "a page it had already read" in (caught.value.message or "")
    assert mocker.call_count == 1


def test_a_next_link_that_repeats_a_page_is_an_error_not_a_loop(mocker: rm.Mocker) -> None:
    mocker.get(f"{API_URL}/v1/agents", json={"data": [{"id": "a"}], "meta": {"next": "/v1/agents?pageKey=p2"}})
    mocker.get(
        f"{API_URL}/v1/agents?pageKey=p2", json={"data": [{"id": "b"}], "meta": {"next": "/v1/agents?pageKey=p2"}}
    )
    with pytest.raises(AirbyteTracedException) as caught:
        _read(_stream(Agents))
    assert "a page it had already read" in (caught.value.message or "")
    assert mocker.call_count == 2


def test_a_200_that_is_not_the_envelope_is_asked_again_then_fails_naming_the_endpoint(mocker: rm.Mocker) -> None:
    mocker.get(f"{API_URL}/v1/agents", json={"message": "maintenance"})
    with pytest.raises(AirbyteTracedException) as caught:
        _read(_stream(Agents))
    assert caught.value.failure_type == FailureType.system_error
    assert "/v1/agents" in (caught.value.message or "")
    assert mocker.call_count == 3


def test_a_200_that_is_not_the_envelope_once_is_read_again_and_loses_nothing(mocker: rm.Mocker) -> None:
    mocker.get(
        f"{API_URL}/v1/agents",
        [{"text": '{"data": [{"id": "a"'}, {"json": {"data": [{"id": "a"}, {"id": "b"}]}}],
    )
    assert [r["id"] for r in _read(_stream(Agents))] == ["a", "b"]


def test_403_names_the_stream_and_is_a_config_error(mocker: rm.Mocker) -> None:
    mocker.get(f"{API_URL}/v1/agents", status_code=403, json={"message": "Forbidden"})
    with pytest.raises(AirbyteTracedException) as caught:
        _read(_stream(Agents))
    assert caught.value.failure_type == FailureType.config_error
    assert "may not read agents" in (caught.value.message or "")
    assert "deselect the agents stream" in (caught.value.message or "")


def test_member_lists_carry_their_team_and_skip_a_team_deleted_meanwhile(mocker: rm.Mocker) -> None:
    mocker.get(f"{API_URL}/v1/teams", json={"data": [{"id": "t1"}, {"id": "t2"}, {"id": "t3"}]})
    mocker.get(f"{API_URL}/v1/teams/t1/agents", json={"data": [{"id": "a1"}, {"id": "a2"}]})
    mocker.get(f"{API_URL}/v1/teams/t2/agents", status_code=404, json={"message": "Not found"})
    mocker.get(f"{API_URL}/v1/teams/t3/agents", json={"data": [{"id": "a1"}]})
    records = _read(_stream(TeamMembers))
    assert [(r["team_id"], r["id"]) for r in records] == [("t1", "a1"), ("t1", "a2"), ("t3", "a1")]


def test_presence_is_a_bare_array_with_zoneless_utc_times(mocker: rm.Mocker) -> None:
    mocker.get(
        f"{API_URL}/v1/agents/presence",
        json=[{"userId": "u", "requestTime": "2021-12-01T12:46:35.935", "lastSeen": None}],
    )
    (record,) = _read(_stream(AgentPresence))
    assert record == {"userId": "u", "requestTime": "2021-12-01T12:46:35.935Z", "lastSeen": None}


def test_contact_endpoints_get_their_address_or_number_as_endpoint(mocker: rm.Mocker) -> None:
    mocker.get(
        f"{API_URL}/v1/contact-endpoints",
        json={
            "data": [
                {"_type": "EmailEndpoint", "address": "support@example.com"},
                {"_type": "TelephonyEndpoint", "number": "+4512345678"},
            ]
        },
    )
    assert [r["endpoint"] for r in _read(_stream(ContactEndpoints))] == ["support@example.com", "+4512345678"]


def _activity(start_ms: int, **extra: Any) -> ActivityLogs:
    return _stream(ActivityLogs, start_ms=start_ms, now_ms=lambda: NOW_MS, **extra)


def test_activity_windows_ask_one_ms_wider_and_keep_only_their_own_events(mocker: rm.Mocker) -> None:
    start_ms = NOW_MS - DAY_MS
    mocker.get(
        f"{API_URL}/v1/conversations/activitylog",
        json={
            "data": [
                # Just below the window (an inclusive fromDatetime returns it), on its start, and on its end.
                {"id": "before", "activityTimestamp": "2024-12-30T23:59:59.999Z[GMT]"},
                {"id": "start", "activityTimestamp": "2024-12-31T00:00:00.000Z[GMT]"},
                {"id": "end", "activityTimestamp": "2025-01-01T00:00:00.000Z[GMT]"},
            ]
        },
    )
    stream = _activity(start_ms)
    records = _read(stream, SyncMode.incremental)
    assert [r["id"] for r in records] == ["start"]
    params = mocker.request_history[0].qs
    assert params["fromdatetime"] == ["2024-12-30t23:59:59.999z"]
    assert params["todatetime"] == ["2025-01-01t00:00:00.000z"]
    assert stream.state == {"activityTimestamp": "2025-01-01T00:00:00Z"}


def test_activity_windows_end_a_safety_lag_before_now(mocker: rm.Mocker) -> None:
    mocker.get(f"{API_URL}/v1/conversations/activitylog", json={"data": []})
    stream = _activity(NOW_MS - DAY_MS, safety_lag_ms=5 * 60_000)
    _read(stream, SyncMode.incremental)
    assert stream.state == {"activityTimestamp": "2024-12-31T23:55:00Z"}


def test_activity_state_is_read_back_and_a_garbled_one_is_a_config_error() -> None:
    stream = _activity(NOW_MS - 10 * DAY_MS)
    stream.state = {"activityTimestamp": "2024-12-31T12:00:00Z"}
    assert stream.state == {"activityTimestamp": "2024-12-31T12:00:00Z"}
    with pytest.raises(AirbyteTracedException) as caught:
        stream.state = {"activityTimestamp": "yesterday"}
    assert caught.value.failure_type == FailureType.config_error


def test_quiet_activity_windows_double_so_a_quiet_year_is_few_requests(mocker: rm.Mocker) -> None:
    mocker.get(f"{API_URL}/v1/conversations/activitylog", json={"data": []})
    _read(_activity(NOW_MS - 365 * DAY_MS), SyncMode.incremental)
    assert mocker.call_count < 25
