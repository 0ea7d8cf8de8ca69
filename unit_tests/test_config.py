from __future__ import annotations

from typing import Any

import pytest
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_dixa.config import parse_config
from unit_tests.config_builder import ConfigBuilder

NOW_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z


def _error(config: dict[str, Any]) -> AirbyteTracedException:
    with pytest.raises(AirbyteTracedException) as caught:
        parse_config(config, NOW_MS)
    assert caught.value.failure_type == FailureType.config_error
    assert "Traceback" not in (caught.value.message or "")
    return caught.value


@pytest.mark.parametrize(
    ("start_date", "expected_ms"),
    [
        ("2024-05-01", 1_714_521_600_000),
        ("2024-05-01T12:30:00Z", 1_714_566_600_000),
        ("2024-05-01T14:30:00+02:00", 1_714_566_600_000),
        ("2024-05-01T12:30:00", 1_714_566_600_000),
        ("2024-05-01T12:30:00.250Z", 1_714_566_600_250),
    ],
)
def test_parse_config_start_date_forms(start_date: str, expected_ms: int) -> None:
    assert parse_config(ConfigBuilder().with_start_date(start_date).build(), NOW_MS).start_ms == expected_ms


def test_parse_config_defaults_match_airbyte_legacy_config() -> None:
    legacy = {"api_token": "legacy-token-abcdef", "start_date": "2021-01-01", "batch_size": 31}
    parsed = parse_config(legacy, NOW_MS)
    assert parsed.api_url == "https://exports.dixa.io"
    assert parsed.batch_days == 31
    assert parsed.requests_per_minute == 10


@pytest.mark.parametrize("start_date", ["2024-13-01", "01/05/2024", "yesterday", "2024-05-01T25:00:00Z", "", 20240501])
def test_parse_config_malformed_start_date(start_date: Any) -> None:
    message = _error(ConfigBuilder().with_start_date(start_date).build()).message or ""
    assert message.startswith("start_date")
    assert "YYYY-MM-DD" in message


def test_parse_config_start_date_in_the_future() -> None:
    message = _error(ConfigBuilder().with_start_date("2025-01-02").build()).message or ""
    assert "in the future" in message


@pytest.mark.parametrize("batch_size", [0, 32, "abc", 1.5, True, -3])
def test_parse_config_batch_size_out_of_range(batch_size: Any) -> None:
    message = _error(ConfigBuilder().with_batch_size(batch_size).build()).message or ""
    assert message.startswith("batch_size must be a whole number of days from 1 to 31")


@pytest.mark.parametrize("batch_size", [1, 31, 31.0])
def test_parse_config_batch_size_accepted(batch_size: Any) -> None:
    assert parse_config(ConfigBuilder().with_batch_size(batch_size).build(), NOW_MS).batch_days == int(batch_size)


@pytest.mark.parametrize(
    "api_url", ["not a url", "ftp://exports.dixa.io", "https://", "exports.dixa.io", "http://[::1"]
)
def test_parse_config_api_url_not_a_url(api_url: str) -> None:
    assert "is not a URL" in (_error(ConfigBuilder().with_api_url(api_url).build()).message or "")


@pytest.mark.parametrize("api_url", ["http://exports.dixa.io", "http://10.0.0.5:8080", "http://0.0.0.0:80"])
def test_parse_config_plain_http_to_non_loopback_host_refused(api_url: str) -> None:
    assert "must use https" in (_error(ConfigBuilder().with_api_url(api_url).build()).message or "")


@pytest.mark.parametrize(
    "api_url", ["http://127.0.0.1:1234", "http://localhost:1234/", "http://[::1]:80", "https://exports.dixa.io/"]
)
def test_parse_config_accepted_api_urls(api_url: str) -> None:
    assert not parse_config(ConfigBuilder().with_api_url(api_url).build(), NOW_MS).api_url.endswith("/")


@pytest.mark.parametrize("token", [None, "", "   "])
def test_parse_config_missing_token(token: Any) -> None:
    assert "api_token is missing" in (_error(ConfigBuilder().with_token(token).build()).message or "")


@pytest.mark.parametrize("api_url", [None, "", "  "])
def test_parse_config_blank_api_url_means_the_default(api_url: Any) -> None:
    assert parse_config(ConfigBuilder().with_api_url(api_url).build(), NOW_MS).api_url == "https://exports.dixa.io"
