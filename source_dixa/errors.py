"""The error policy: one reviewed table from HTTP outcome to action, plus the wait before a retry."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Mapping
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Optional, Union
from urllib.parse import parse_qsl, urlsplit

import requests
import urllib3
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.error_handlers import (
    BackoffStrategy,
    ErrorResolution,
    HttpStatusErrorHandler,
    ResponseAction,
)
from typing_extensions import override

TOKEN_HELP = "Create a new API token in Dixa under Settings > Integrations > API Tokens and update api_token."
DIXA_API_TOKEN_HELP = (
    'The token must be of the "Dixa API" version (Dixa > Settings > Integrations > API Tokens); update api_token.'
)

_RETRY = ResponseAction.RETRY
_FAIL = ResponseAction.FAIL
_TRANSIENT = FailureType.transient_error
_CONFIG = FailureType.config_error
_SYSTEM = FailureType.system_error

_Key = Union[int, str, type[Exception]]

# Rows both services share. Keys are HTTP statuses or exception classes (matched through their class hierarchy, most
# specific first). Sources: the Exports OAS lists 400, 401, 429 and 500 (dixa-exports-api.md §4); the Dixa API
# documents 429 for its rate limit (dixa-api.md §2); peers' handling in dixa-exports-api.md §3, §9 and dixa-api.md §2.
_SHARED_ROWS: Mapping[_Key, ErrorResolution] = {
    # tap-dixa retries 408 (§3).
    408: ErrorResolution(_RETRY, _TRANSIENT, "Dixa timed out the request (HTTP 408)."),
    # OAS: "429 API limit has been reached". Waiting is always right; the pacer also slows down (pacing.py).
    429: ErrorResolution(ResponseAction.RATE_LIMITED, _TRANSIENT, "Dixa's rate limit was reached (HTTP 429)."),
    # OAS: "500 Internal error"; 502-504 come from the gateways in front of it. All peers retry them (§3).
    500: ErrorResolution(_RETRY, _TRANSIENT, "Dixa answered with an internal error (HTTP 500)."),
    502: ErrorResolution(_RETRY, _TRANSIENT, "Dixa's gateway answered HTTP 502."),
    503: ErrorResolution(_RETRY, _TRANSIENT, "Dixa is unavailable (HTTP 503)."),
    504: ErrorResolution(_RETRY, _TRANSIENT, "Dixa's gateway timed out (HTTP 504)."),
    # Network faults: a timeout, a reset or a dropped connection says nothing about the request itself.
    requests.Timeout: ErrorResolution(_RETRY, _TRANSIENT, "The request to Dixa timed out."),
    requests.exceptions.ChunkedEncodingError: ErrorResolution(_RETRY, _TRANSIENT, "Dixa's response broke off."),
    requests.ConnectionError: ErrorResolution(_RETRY, _TRANSIENT, "The connection to Dixa failed."),
    # A URL requests cannot use is a config problem; config.py validates the URLs, so this is a backstop.
    requests.exceptions.InvalidURL: ErrorResolution(_FAIL, _CONFIG, "api_url is not a usable URL."),
    requests.exceptions.InvalidSchema: ErrorResolution(_FAIL, _CONFIG, "api_url is not a usable URL."),
}

# The Exports API (exports.dixa.io).
DIXA_ERROR_MAPPING: Mapping[_Key, ErrorResolution] = {
    # OAS: "400 Invalid query parameters", no body. Repeating the same window cannot help.
    400: ErrorResolution(_FAIL, _SYSTEM, "Dixa refused the request parameters (HTTP 400)."),
    # OAS: "401 Invalid or missing credentials".
    401: ErrorResolution(_FAIL, _CONFIG, f"Dixa rejected the API token (HTTP 401). {TOKEN_HELP}"),
    # Not in the OAS; PostHog treats 403 from exports.dixa.io as a credential error (§2).
    403: ErrorResolution(_FAIL, _CONFIG, f"Dixa rejected the API token (HTTP 403). {TOKEN_HELP}"),
    # Only a wrong api_url produces this: both endpoints exist on the real host.
    404: ErrorResolution(_FAIL, _CONFIG, "The Exports API was not found at api_url (HTTP 404); check api_url."),
    **_SHARED_ROWS,
}

# The Dixa API (dev.dixa.io). `{stream}` is replaced with the stream's name.
DIXA_API_ERROR_MAPPING: Mapping[_Key, ErrorResolution] = {
    # OAS: 400 with {"message": ...} for bad parameters or a pageKey it cannot read (dixa-api.md §3).
    400: ErrorResolution(_FAIL, _SYSTEM, "The Dixa API refused the request for {stream} (HTTP 400)."),
    # The OAS security scheme: a raw token in Authorization; an Integrations API token is refused (dixa-api.md §1).
    401: ErrorResolution(_FAIL, _CONFIG, f"The Dixa API refused the API token (HTTP 401). {DIXA_API_TOKEN_HELP}"),
    # Scopes are UNCONFIRMED (dixa-api.md §1): a token may be refused on one endpoint only. The CDK goes on with the
    # other streams and fails the sync at the end.
    403: ErrorResolution(
        _FAIL,
        _CONFIG,
        "The API token may not read {stream} from the Dixa API (HTTP 403); "
        "grant the token access to it in Dixa, or deselect the {stream} stream.",
    ),
    # Every endpoint we call exists on the real host: only a wrong dixa_api_url gets here.
    404: ErrorResolution(
        _FAIL, _CONFIG, "The Dixa API was not found at dixa_api_url (HTTP 404) for {stream}; check dixa_api_url."
    ),
    **_SHARED_ROWS,
}

# A team or queue deleted between listing it and asking for its members: the members are gone too (dixa-api.md §4).
MISSING_PARENT = ErrorResolution(
    ResponseAction.IGNORE, None, "{stream}: its team or queue was deleted during the sync (HTTP 404); skipped."
)
# Anything not in the table: another 5xx is treated like 500, another 4xx like 400.
_UNLISTED_SERVER_ERROR = ErrorResolution(_RETRY, _TRANSIENT, "Dixa answered with a server error.")
_UNLISTED_CLIENT_ERROR = ErrorResolution(_FAIL, _SYSTEM, "Dixa refused the request.")
_UNLISTED_EXCEPTION = ErrorResolution(_RETRY, _TRANSIENT, "The request to Dixa failed.")
# Refused, unresolvable, or no TLS/proxy agreement: retried like any network fault, but halving the window cannot
# help. Its message starts every such resolution, so the streams can tell it apart.
UNREACHABLE_PREFIX = "Could not connect to the "
# Dixa documents no Retry-After (dixa-exports-api.md §3); a value past an hour is more likely a bug than a plan.
MAX_RETRY_AFTER_S = 3600.0


class DixaErrorHandler(HttpStatusErrorHandler):
    """Looks outcomes up in one service's table and names the status and request in the message."""

    def __init__(
        self,
        logger: logging.Logger,
        max_retries: int,
        max_time: timedelta,
        mapping: Mapping[_Key, ErrorResolution] = DIXA_ERROR_MAPPING,
        api_name: str = "Exports API",
        stream_name: str = "",
        missing_parent_ok: bool = False,
    ) -> None:
        super().__init__(logger, error_mapping=mapping, max_retries=max_retries, max_time=max_time)
        self._mapping = mapping
        self._api_name = api_name
        self._stream_name = stream_name
        self._missing_parent_ok = missing_parent_ok

    @override
    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]] = None
    ) -> ErrorResolution:
        if isinstance(response_or_exception, requests.Response):
            if self._missing_parent_ok and response_or_exception.status_code == 404:
                return _named(MISSING_PARENT, self._stream_name)
            resolution = _named(resolve_status(response_or_exception, self._mapping), self._stream_name)
            if resolution.response_action in (_RETRY, ResponseAction.RATE_LIMITED):
                # The retry needs only the status and headers; closing hands the socket back instead of leaving
                # a streamed body open until garbage collection.
                response_or_exception.close()
            return resolution
        if isinstance(response_or_exception, Exception):
            return resolve_exception(response_or_exception, self._mapping, self._api_name)
        return super().interpret_response(response_or_exception)


def _named(resolution: ErrorResolution, stream_name: str) -> ErrorResolution:
    message = resolution.error_message
    if not message or "{stream}" not in message:
        return resolution
    return ErrorResolution(
        resolution.response_action, resolution.failure_type, message.replace("{stream}", stream_name)
    )


def resolve_status(
    response: requests.Response, mapping: Mapping[_Key, ErrorResolution] = DIXA_ERROR_MAPPING
) -> ErrorResolution:
    status = response.status_code
    if 200 <= status < 300:
        return ErrorResolution(ResponseAction.SUCCESS, None, None)
    resolution = mapping.get(status)
    if resolution is None:
        resolution = _UNLISTED_SERVER_ERROR if status >= 500 else _UNLISTED_CLIENT_ERROR
    message = f"{resolution.error_message} {describe_request(response)}"
    if status == 400 or (resolution is _UNLISTED_CLIENT_ERROR):
        message += f" Dixa's answer: {_short_body(response)}"
    return ErrorResolution(resolution.response_action, resolution.failure_type, message.strip())


def resolve_exception(
    exception: Exception,
    mapping: Mapping[_Key, ErrorResolution] = DIXA_ERROR_MAPPING,
    api_name: str = "Exports API",
) -> ErrorResolution:
    """The table's row for the exception's class, its message followed by what actually went wrong."""
    detail = f"{type(exception).__name__}: {first_line(exception) or 'no detail'}"
    if is_unreachable(exception):
        return ErrorResolution(_RETRY, _TRANSIENT, f"{UNREACHABLE_PREFIX}{api_name} host ({detail}).")
    resolution = _UNLISTED_EXCEPTION
    for klass in type(exception).__mro__:
        row = mapping.get(klass)
        if row is not None:
            resolution = row
            break
    return ErrorResolution(
        resolution.response_action, resolution.failure_type, f"{resolution.error_message} ({detail})"
    )


def first_line(exception: BaseException) -> str:
    """The first line of an exception's text, at most 300 characters; empty if it has none."""
    lines = str(exception).strip().splitlines()
    return lines[0][:300] if lines else ""


def is_unreachable(exception: BaseException) -> bool:
    """Refused, unknown host (urllib3's NewConnectionError inside a ConnectionError), TLS or proxy failures."""
    if isinstance(exception, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        return True
    if not isinstance(exception, requests.ConnectionError) or not exception.args:
        return False
    reason = getattr(exception.args[0], "reason", exception.args[0])
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def describe_request(response: requests.Response) -> str:
    """'Request: conversation_export with updated_after=… updated_before=…', never the token (it is a header)."""
    request = response.request
    if request is None or not request.url:
        return ""
    parts = urlsplit(request.url)
    params = " ".join(f"{key}={value}" for key, value in parse_qsl(parts.query))
    endpoint = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return f"Request: {endpoint} {params}".rstrip() + "."


def _short_body(response: requests.Response) -> str:
    # Error bodies are small (the OAS says none at all); never read more than a little of a streamed one.
    try:
        raw = response.raw.read(500, decode_content=True) if response.raw is not None else b""
    except Exception:
        raw = b""
    text = raw.decode("utf-8", "replace").strip() if isinstance(raw, bytes) else ""
    return repr(text[:300]) if text else "no body."


def retry_after_s(response: requests.Response) -> Optional[float]:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP-date, RFC 9110 §10.2.3), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return min(max(0.0, seconds), MAX_RETRY_AFTER_S) if math.isfinite(seconds) else None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    date_header = response.headers.get("Date")
    try:
        now = parsedate_to_datetime(date_header) if date_header else None
    except (TypeError, ValueError):
        now = None
    if now is None or moment.tzinfo is None:
        return None
    return min(max(0.0, (moment - now).total_seconds()), MAX_RETRY_AFTER_S)


class DixaBackoffStrategy(BackoffStrategy):
    """`Retry-After` when Dixa sends one; otherwise one request interval, doubling, with jitter.

    Dixa documents no rate-limit headers (§3), so the fallback is tied to the pace the connector keeps:
    retrying sooner than one request interval would only wait in the rate budget instead.
    """

    def __init__(
        self,
        request_interval_s: Union[float, Callable[[], float]],
        max_wait_s: float = 120.0,
        rng: Optional[random.Random] = None,
        on_wait: Optional[Callable[[float], None]] = None,
    ) -> None:
        # A callable follows the pace as it changes (pacing.AdaptivePacer.interval_s).
        self._interval_s = request_interval_s if callable(request_interval_s) else lambda: request_interval_s
        self._max_wait_s = max_wait_s
        self._rng = rng or random.Random()
        self._on_wait = on_wait

    @override
    def backoff_time(
        self,
        response_or_exception: Optional[Union[requests.Response, requests.RequestException]],
        attempt_count: int,
    ) -> Optional[float]:
        wait_s = self.fallback_s(attempt_count)
        if isinstance(response_or_exception, requests.Response):
            header_s = retry_after_s(response_or_exception)
            if header_s is not None:
                # The CDK treats 0 as "no opinion" and then applies its own exponential wait.
                wait_s = max(header_s, 0.001)
        if self._on_wait is not None:
            # The CDK sleeps one second more than asked (airbyte_cdk/sources/streams/http/rate_limiting.py).
            self._on_wait(wait_s + 1.0)
        return wait_s

    def fallback_s(self, attempt_count: int) -> float:
        base_s = min(self._interval_s() * 2.0 ** max(0, attempt_count - 1), self._max_wait_s)
        return base_s * self._rng.uniform(0.5, 1.0)


class _GiveUpToInfo(logging.Filter):
    """Re-levels the CDK's two give-up lines to INFO, without their traceback.

    Each time the CDK stops retrying one request it logs "Max retry limit reached" (rate_limiting.py, log_give_up)
    and "Retries exhausted with backoff exception." with a traceback (http_client.py, _send_with_retry), both at
    ERROR. Our streams then either carry on (waiting out a 429, reading a window again, splitting it) or raise their
    own error, which the CDK logs at ERROR with its one-sentence message and reports as a TRACE. So a healthy sync
    shows no ERROR, and a failing one still does.
    """

    _SITES = frozenset({("rate_limiting", "log_give_up"), ("http_client", "_send_with_retry")})

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and (record.module, record.funcName) in self._SITES:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


_GIVE_UP_TO_INFO = _GiveUpToInfo()


def quiet_give_up_logs(stream_logger: logging.Logger) -> None:
    """Install the give-up filter on the CDK's shared logger and on one stream's logger (both log give-ups)."""
    for logger in (logging.getLogger("airbyte"), stream_logger):
        if _GIVE_UP_TO_INFO not in logger.filters:
            logger.addFilter(_GIVE_UP_TO_INFO)
