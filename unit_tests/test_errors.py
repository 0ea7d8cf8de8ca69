from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
import requests
import urllib3
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.error_handlers import ResponseAction

from source_dixa.errors import (
    UNREACHABLE_PREFIX,
    DixaBackoffStrategy,
    DixaErrorHandler,
    resolve_exception,
    retry_after_s,
)

RETRY, FAIL, RATE_LIMITED = ResponseAction.RETRY, ResponseAction.FAIL, ResponseAction.RATE_LIMITED
TRANSIENT, CONFIG, SYSTEM = FailureType.transient_error, FailureType.config_error, FailureType.system_error


def _response(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    response.raw = urllib3.response.HTTPResponse(body=body, preload_content=False)
    response.request = requests.Request(
        "GET", "http://127.0.0.1:1/v1/conversation_export?updated_after=9&updated_before=20"
    ).prepare()
    return response


@pytest.mark.parametrize(
    ("status", "action", "failure_type"),
    [
        (200, ResponseAction.SUCCESS, None),
        (400, FAIL, SYSTEM),
        (401, FAIL, CONFIG),
        (403, FAIL, CONFIG),
        (404, FAIL, CONFIG),
        (408, RETRY, TRANSIENT),
        (429, RATE_LIMITED, TRANSIENT),
        (500, RETRY, TRANSIENT),
        (502, RETRY, TRANSIENT),
        (503, RETRY, TRANSIENT),
        (504, RETRY, TRANSIENT),
        (507, RETRY, TRANSIENT),  # unlisted 5xx: like 500
        (422, FAIL, SYSTEM),  # unlisted 4xx: like 400
    ],
)
def test_error_table_status_rows(status: int, action: ResponseAction, failure_type: Any) -> None:
    handler = DixaErrorHandler(__import__("logging").getLogger("test"), max_retries=3, max_time=timedelta(hours=1))
    resolution = handler.interpret_response(_response(status))
    assert (resolution.response_action, resolution.failure_type) == (action, failure_type)
    if status >= 400:
        assert "updated_after=9 updated_before=20" in (resolution.error_message or "")


@pytest.mark.parametrize(
    ("exception", "action", "failure_type"),
    [
        (requests.exceptions.ReadTimeout(), RETRY, TRANSIENT),
        (requests.exceptions.ConnectTimeout(), RETRY, TRANSIENT),
        (requests.exceptions.ChunkedEncodingError(), RETRY, TRANSIENT),
        (requests.ConnectionError("reset by peer"), RETRY, TRANSIENT),
        (requests.exceptions.InvalidURL(), FAIL, CONFIG),
        (ValueError("anything else"), RETRY, TRANSIENT),
    ],
)
def test_error_table_exception_rows_match_through_the_class_hierarchy(
    exception: Exception, action: ResponseAction, failure_type: FailureType
) -> None:
    resolution = resolve_exception(exception)
    assert (resolution.response_action, resolution.failure_type) == (action, failure_type)


def test_refused_connection_is_recognised_as_unreachable() -> None:
    refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    error = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason=refused))  # type: ignore[arg-type]
    resolution = resolve_exception(error)
    assert (resolution.error_message or "").startswith(UNREACHABLE_PREFIX)
    assert "Connection refused" in (resolution.error_message or "")


@pytest.mark.parametrize(
    "error", [requests.exceptions.SSLError("wrong version number"), requests.exceptions.ProxyError("proxy says no")]
)
def test_tls_and_proxy_failures_are_unreachable_and_keep_their_cause(error: Exception) -> None:
    message = resolve_exception(error).error_message or ""
    assert message.startswith(UNREACHABLE_PREFIX)
    assert str(error) in message


def test_exception_resolutions_name_the_cause() -> None:
    message = resolve_exception(requests.exceptions.ReadTimeout("read timed out after 300 s")).error_message or ""
    assert message == "The request to Dixa timed out. (ReadTimeout: read timed out after 300 s)"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0.25"}, 0.25),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT", "Date": "Wed, 21 Oct 2015 07:28:00 GMT"}, 30.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "99999999999"}, 3600.0),
        ({}, None),
    ],
)
def test_retry_after_header_forms(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(_response(429, headers)) == expected


def test_backoff_uses_retry_after_when_present() -> None:
    strategy = DixaBackoffStrategy(request_interval_s=6.0)
    assert strategy.backoff_time(_response(429, {"Retry-After": "3"}), attempt_count=1) == 3.0
    assert strategy.backoff_time(_response(429, {"Retry-After": "0"}), attempt_count=1) == 0.001


def test_backoff_without_header_doubles_from_one_request_interval_and_caps() -> None:
    strategy = DixaBackoffStrategy(request_interval_s=6.0, max_wait_s=30.0, rng=random.Random(1))
    waits = [strategy.backoff_time(_response(503), attempt_count=n) for n in range(1, 6)]
    bounds = [6.0, 12.0, 24.0, 30.0, 30.0]
    assert all(0.5 * high <= wait <= high for wait, high in zip(waits, bounds, strict=True) if wait is not None)
    assert None not in waits
