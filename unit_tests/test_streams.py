from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import requests_mock as rm
from airbyte_cdk.models import FailureType, SyncMode
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_dixa.exports_api import DixaExportStream, MessageExport, parse_state_value
from unit_tests.conftest import API_URL, DAY_MS, NOW_MS, TOKEN

URL = f"{API_URL}/v1/conversation_export"
StreamFactory = Callable[..., DixaExportStream]


def _records(*pairs: tuple[int, int]) -> list[dict[str, Any]]:
    return [{"id": record_id, "updated_at": updated_at_ms, "subject": "hi"} for record_id, updated_at_ms in pairs]


def _read_all(stream: DixaExportStream, sync_mode: SyncMode = SyncMode.incremental) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for stream_slice in stream.stream_slices(sync_mode=sync_mode):
        out.extend(r for r in stream.read_records(sync_mode, stream_slice=stream_slice) if isinstance(r, dict))
    return out


def _params(request: Any) -> dict[str, int]:
    return {key: int(values[0]) for key, values in parse_qs(urlsplit(request.url).query).items()}


def test_request_params_ask_one_ms_below_the_window_and_up_to_its_end(make_stream: StreamFactory) -> None:
    stream = make_stream()
    params = stream.request_params(stream_state={}, stream_slice={"start_ms": 1000, "end_ms": 5000})
    assert params == {"updated_after": 999, "updated_before": 5000}


def test_message_export_filters_on_created_at(make_stream: StreamFactory) -> None:
    stream = make_stream(cls=MessageExport, start_ms=NOW_MS - DAY_MS, window_ms=DAY_MS)
    assert stream.request_params(stream_state={}, stream_slice={"start_ms": 10, "end_ms": 20}) == {
        "created_after": 9,
        "created_before": 20,
    }
    body = [{"id": "m-1", "csid": 1, "created_at": NOW_MS - 5}, {"id": "m-2", "csid": 1, "created_at": NOW_MS}]
    with rm.Mocker() as mocker:
        mocker.get(f"{API_URL}/v1/message_export", json=body)
        assert [r["id"] for r in _read_all(stream)] == ["m-1"]
    assert stream.state == {"created_at": NOW_MS}


def test_stream_slices_cover_start_to_now_in_windows(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - 7 * DAY_MS, window_ms=3 * DAY_MS)
    slices = list(stream.stream_slices(sync_mode=SyncMode.full_refresh))
    assert [s["start_ms"] for s in slices] == [NOW_MS - 7 * DAY_MS, NOW_MS - 4 * DAY_MS, NOW_MS - DAY_MS]
    assert slices[-1]["end_ms"] == NOW_MS


def test_stream_slices_incremental_resume_from_state(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - 7 * DAY_MS)
    stream.state = {"updated_at": NOW_MS - DAY_MS // 2}
    slices = list(stream.stream_slices(sync_mode=SyncMode.incremental))
    assert slices == [{"start_ms": NOW_MS - DAY_MS // 2, "end_ms": NOW_MS}]


def test_stream_slices_full_refresh_ignores_state(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - 2 * DAY_MS, window_ms=DAY_MS)
    stream.state = {"updated_at": NOW_MS - 1}
    assert len(list(stream.stream_slices(sync_mode=SyncMode.full_refresh))) == 2


def test_stream_slices_nothing_when_state_is_now(make_stream: StreamFactory) -> None:
    stream = make_stream()
    stream.state = {"updated_at": NOW_MS}
    assert list(stream.stream_slices(sync_mode=SyncMode.incremental)) == []


def test_read_emits_only_records_inside_the_half_open_window_once(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - 2 * DAY_MS, window_ms=DAY_MS)
    boundary = NOW_MS - DAY_MS
    # An API with inclusive bounds returns the boundary record for both windows, plus the ms before the start.
    body = _records((1, NOW_MS - 2 * DAY_MS - 1), (2, NOW_MS - 2 * DAY_MS), (3, boundary), (4, NOW_MS - 1), (5, NOW_MS))
    with rm.Mocker() as mocker:
        mocker.get(URL, json=body)
        ids = [r["id"] for r in _read_all(stream)]
    assert ids == [2, 3, 4]
    assert stream.state == {"updated_at": NOW_MS}


def test_state_advances_per_window_only_after_the_window_is_read(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - 2 * DAY_MS, window_ms=DAY_MS)
    slices = list(stream.stream_slices(sync_mode=SyncMode.incremental))
    with rm.Mocker() as mocker:
        mocker.get(URL, json=_records((1, NOW_MS - 2 * DAY_MS + 5)))
        reader = iter(stream.read_records(SyncMode.incremental, stream_slice=slices[0]))
        next(reader)
        assert stream.state == {}
        rest = list(reader)
    assert [type(m).__name__ for m in rest] == ["AirbyteTraceMessage"]
    assert rest[0].estimate.row_estimate == 2  # one record in the first of two equal windows
    assert stream.state == {"updated_at": slices[0]["end_ms"]}


def test_read_sends_bearer_token_and_user_agent(make_stream: StreamFactory) -> None:
    stream = make_stream()
    with rm.Mocker() as mocker:
        mocker.get(URL, json=[])
        _read_all(stream)
        headers = mocker.request_history[0].headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["User-Agent"].startswith("source-dixa")


def test_truncated_body_is_read_again_without_repeating_records(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - DAY_MS, window_ms=DAY_MS)
    full = json.dumps(_records((1, NOW_MS - 10), (2, NOW_MS - 9), (3, NOW_MS - 8))).encode()
    cut = full[: full.index(b'{"id": 3')]
    with rm.Mocker() as mocker:
        mocker.get(URL, [{"content": cut}, {"content": full}])
        ids = [r["id"] for r in _read_all(stream)]
        assert mocker.call_count == 2
    assert ids == [1, 2, 3]
    assert stream.state == {"updated_at": NOW_MS}


def test_body_that_keeps_breaking_off_fails_without_advancing_state(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - 30 * 60 * 1000, window_ms=DAY_MS)
    with rm.Mocker() as mocker:
        mocker.get(URL, content=b'[{"id": 1, "updated_at": ' + str(NOW_MS - 5).encode() + b"}, {")
        with pytest.raises(AirbyteTracedException) as caught:
            _read_all(stream)
    assert caught.value.failure_type == FailureType.transient_error
    assert "kept failing" in (caught.value.message or "")
    assert stream.state == {}


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<html>oops</html>", "text/html", "not a JSON array (Content-Type 'text/html'"),
        (b'{"message": "unexpected"}', "application/json", "not a JSON array"),
        (b'[{"id": 1, "subject": "no cursor"}]', "application/json", "has no 'updated_at'"),
        (b'[{"id": 1, "updated_at": "2024-01-01"}]', "application/json", "not Unix milliseconds"),
    ],
)
def test_unusable_200_body_fails_with_a_clear_message(
    make_stream: StreamFactory, body: bytes, content_type: str, expected: str
) -> None:
    stream = make_stream(start_ms=NOW_MS - DAY_MS, window_ms=DAY_MS)
    with rm.Mocker() as mocker:
        mocker.get(URL, content=body, headers={"Content-Type": content_type})
        with pytest.raises(AirbyteTracedException) as caught:
            _read_all(stream)
    assert expected in (caught.value.message or "")
    assert caught.value.failure_type == FailureType.system_error
    assert stream.state == {}


def test_unexpected_content_type_with_a_good_body_is_read(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - DAY_MS, window_ms=DAY_MS)
    with rm.Mocker() as mocker:
        mocker.get(URL, text=json.dumps(_records((1, NOW_MS - 1))), headers={"Content-Type": "text/plain"})
        assert [r["id"] for r in _read_all(stream)] == [1]


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_token_is_a_config_error(make_stream: StreamFactory, status: int) -> None:
    stream = make_stream()
    with rm.Mocker() as mocker:
        mocker.get(URL, status_code=status)
        with pytest.raises(AirbyteTracedException) as caught:
            _read_all(stream)
    assert caught.value.failure_type == FailureType.config_error
    assert (caught.value.message or "").startswith(f"Dixa rejected the API token (HTTP {status})")
    assert TOKEN not in str(caught.value.message) + str(caught.value.internal_message)


def test_400_names_the_window_and_the_answer(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - DAY_MS, window_ms=DAY_MS)
    with rm.Mocker() as mocker:
        mocker.get(URL, status_code=400, text="span too long")
        with pytest.raises(AirbyteTracedException) as caught:
            _read_all(stream)
    message = caught.value.message or ""
    assert f"updated_after={NOW_MS - DAY_MS - 1}" in message and f"updated_before={NOW_MS}" in message
    assert "span too long" in message
    assert mocker.call_count == 1


def test_server_errors_are_retried(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - DAY_MS, window_ms=DAY_MS)
    with rm.Mocker() as mocker:
        mocker.get(
            URL, [{"status_code": 503}, {"exc": requests.exceptions.ReadTimeout}, {"json": _records((7, NOW_MS - 3))}]
        )
        assert [r["id"] for r in _read_all(stream)] == [7]
        assert mocker.call_count == 3


def test_after_a_split_later_windows_are_read_at_the_smaller_size(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - 8 * 60 * 60 * 1000, window_ms=4 * 60 * 60 * 1000, max_retries=0)
    spans: list[int] = []

    def answer(request: Any, context: Any) -> str:
        params = _params(request)
        spans.append(params["updated_before"] - params["updated_after"] - 1)
        if spans[-1] > 2 * 60 * 60 * 1000:
            context.status_code = 504
            return ""
        return "[]"

    with rm.Mocker() as mocker:
        mocker.get(URL, text=answer)
        _read_all(stream)
    hour = 60 * 60 * 1000
    # The first 4-hour window fails and is halved; the second is halved without being tried whole.
    assert spans == [4 * hour, 2 * hour, 2 * hour, 2 * hour, 2 * hour]


def test_window_that_keeps_failing_is_split_in_halves(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - 4 * 60 * 60 * 1000, window_ms=DAY_MS, max_retries=0)
    spans: list[int] = []

    def answer(request: Any, context: Any) -> str:
        params = _params(request)
        spans.append(params["updated_before"] - params["updated_after"])
        if spans[-1] > 2 * 60 * 60 * 1000 + 1:
            context.status_code = 504
            return ""
        return json.dumps(_records((params["updated_before"], params["updated_before"] - 1)))

    with rm.Mocker() as mocker:
        mocker.get(URL, text=answer)
        records = _read_all(stream)
    assert len(records) == 2
    assert spans[0] == 4 * 60 * 60 * 1000 + 1
    assert stream.state == {"updated_at": NOW_MS}


def test_rate_limit_is_waited_out_for_as_long_as_dixa_asks(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - DAY_MS, window_ms=DAY_MS, max_retries=0)
    with rm.Mocker() as mocker:
        too_many = {"status_code": 429, "headers": {"Retry-After": "0"}}
        mocker.get(URL, [too_many, too_many, too_many, {"json": _records((1, NOW_MS - 1))}])
        assert [r["id"] for r in _read_all(stream)] == [1]
        assert mocker.call_count == 4


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), (5, 5), ("1704067200000", 1704067200000), (1.7e12, 1700000000000)]
)
def test_parse_state_value_accepts_legacy_forms(value: Any, expected: Any) -> None:
    assert parse_state_value(value, "conversation_export", "updated_at") == expected


@pytest.mark.parametrize("value", ["yesterday", True, {"a": 1}])
def test_parse_state_value_rejects_garbage_as_config_error(value: Any) -> None:
    with pytest.raises(AirbyteTracedException) as caught:
        parse_state_value(value, "conversation_export", "updated_at")
    assert caught.value.failure_type == FailureType.config_error


def test_records_without_id_are_all_emitted(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - DAY_MS, window_ms=DAY_MS)
    body = [{"id": None, "updated_at": NOW_MS - 3}, {"updated_at": NOW_MS - 2}, {"id": None, "updated_at": NOW_MS - 1}]
    with rm.Mocker() as mocker:
        mocker.get(URL, json=body)
        assert len(_read_all(stream)) == 3


def test_whole_number_float_cursor_is_accepted(make_stream: StreamFactory) -> None:
    stream = make_stream(start_ms=NOW_MS - DAY_MS, window_ms=DAY_MS)
    with rm.Mocker() as mocker:
        mocker.get(URL, text=f'[{{"id": 1, "updated_at": {NOW_MS - 1}.0}}]')
        assert [r["id"] for r in _read_all(stream)] == [1]


def test_records_outside_any_reading_of_the_bounds_are_dropped_with_a_warning(
    make_stream: StreamFactory, caplog: pytest.LogCaptureFixture
) -> None:
    stream = make_stream(start_ms=NOW_MS - DAY_MS, window_ms=DAY_MS)
    with rm.Mocker() as mocker:
        mocker.get(URL, json=_records((1, NOW_MS - 5), (2, NOW_MS - 3 * DAY_MS)))
        assert [r["id"] for r in _read_all(stream)] == [1]
    assert "returned 1 records" in caplog.text


def test_state_does_not_pass_a_window_that_was_abandoned(make_stream: StreamFactory) -> None:
    """The CDK's record `_limit` stops reading a window early and moves on; state must not skip over it."""
    stream = make_stream(start_ms=NOW_MS - 2 * DAY_MS, window_ms=DAY_MS)
    first, second = list(stream.stream_slices(sync_mode=SyncMode.incremental))
    with rm.Mocker() as mocker:
        mocker.get(URL, json=_records((1, NOW_MS - 2 * DAY_MS + 1), (2, NOW_MS - 2 * DAY_MS + 2)))
        partial = iter(stream.read_records(SyncMode.incremental, stream_slice=first))
        next(partial)
        partial.close()  # abandoned after one record
        list(stream.read_records(SyncMode.incremental, stream_slice=second))
    assert stream.state == {}
