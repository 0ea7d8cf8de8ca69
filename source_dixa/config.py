"""Turns a raw config mapping into typed values, with one actionable sentence per problem."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

DEFAULT_API_URL = "https://exports.dixa.io"
# "https://dev.dixa.io/v1/..." (dixa-api.md, intro).
DEFAULT_DIXA_API_URL = "https://dev.dixa.io"
DEFAULT_BATCH_DAYS = 31
MAX_BATCH_DAYS = 31
# "conversation_export allows only 10 requests/minute per org token" (dixa-exports-api.md §3, two peers agree).
DEFAULT_REQUESTS_PER_MINUTE = 10
# "Rate: 10 requests per second; Bursts: 4 requests" per token on the Dixa API (dixa-api.md §2).
DEFAULT_DIXA_API_REQUESTS_PER_SECOND = 10
# Records Dixa shows up to this late are still read (README, "Safety lag").
DEFAULT_SAFETY_LAG_MINUTES = 5
MAX_SAFETY_LAG_MINUTES = 1440
_LOOPBACK_NAMES = {"localhost"}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class DixaConfig:
    api_token: str
    start_ms: int
    batch_days: int
    api_url: str
    requests_per_minute: int
    dixa_api_url: str = DEFAULT_DIXA_API_URL
    dixa_api_requests_per_second: int = DEFAULT_DIXA_API_REQUESTS_PER_SECOND
    safety_lag_ms: int = DEFAULT_SAFETY_LAG_MINUTES * 60_000


def config_error(message: str) -> AirbyteTracedException:
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)


def parse_config(config: Mapping[str, Any], now_ms: int) -> DixaConfig:
    """Validate `config` and convert it; raises a config_error naming the field and the fix."""
    token = config.get("api_token")
    if not isinstance(token, str) or not token.strip():
        raise config_error("api_token is missing: paste a Dixa API token (Settings > Integrations > API Tokens).")
    start_ms = parse_start_date(config.get("start_date"))
    if start_ms > now_ms:
        raise config_error(
            f"start_date {config.get('start_date')} is in the future; choose a date on or before today (UTC)."
        )
    return DixaConfig(
        api_token=token.strip(),
        start_ms=start_ms,
        batch_days=_parse_int(config, "batch_size", DEFAULT_BATCH_DAYS, 1, MAX_BATCH_DAYS, "days"),
        api_url=parse_api_url(config.get("api_url"), "api_url", DEFAULT_API_URL),
        requests_per_minute=_parse_int(
            config, "requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE, 1, 10_000, "requests a minute"
        ),
        dixa_api_url=parse_api_url(config.get("dixa_api_url"), "dixa_api_url", DEFAULT_DIXA_API_URL),
        dixa_api_requests_per_second=_parse_int(
            config,
            "dixa_api_requests_per_second",
            DEFAULT_DIXA_API_REQUESTS_PER_SECOND,
            1,
            1_000,
            "requests a second",
        ),
        safety_lag_ms=60_000
        * _parse_int(config, "safety_lag_minutes", DEFAULT_SAFETY_LAG_MINUTES, 0, MAX_SAFETY_LAG_MINUTES, "minutes"),
    )


def parse_start_date(value: Any) -> int:
    """`YYYY-MM-DD` (UTC midnight) or an ISO-8601 datetime; a datetime without a zone is read as UTC."""
    hint = "use YYYY-MM-DD or an ISO-8601 datetime such as 2024-05-01T12:30:00Z."
    if not isinstance(value, str) or not value.strip():
        raise config_error(f"start_date is missing: {hint}")
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise config_error(f"start_date '{text}' is not a date: {hint}") from None
    start_ms = int(moment.timestamp() * 1000)
    if start_ms < 0:
        raise config_error(f"start_date '{text}' is before 1970: {hint}")
    return start_ms


def parse_api_url(value: Any, field: str = "api_url", default: str = DEFAULT_API_URL) -> str:
    """https to anything, or plain http to a loopback host only: a token must not travel unencrypted."""
    text = value.strip().rstrip("/") if isinstance(value, str) else ""
    if not text:
        return default
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError for a port that is not a number
        usable = parts.scheme in ("http", "https") and bool(host) and not parts.query and not parts.fragment
    except ValueError:
        usable = False
    if not usable:
        raise config_error(f"{field} '{text}' is not a URL; remove it to use {default}.")
    if parts.scheme == "http" and not _is_loopback(host):
        raise config_error(
            f"{field} must use https (plain http is allowed only for 127.0.0.1, localhost or ::1); got '{text}'."
        )
    return text


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_int(config: Mapping[str, Any], key: str, default: int, low: int, high: int, unit: str) -> int:
    value = config.get(key, default)
    if value is None:
        return default
    # JSON has one number type: 31.0 is fine, 31.5 and "31" are not (bool is an int subclass in Python).
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise config_error(f"{key} must be a whole number of {unit} from {low} to {high}; got {value!r}.")
    return value
