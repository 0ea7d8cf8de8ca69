"""What the streams of both Dixa services share: who we say we are, the clock, and reading the CDK's give-up errors."""

from __future__ import annotations

import importlib.metadata
import logging
import time
from typing import Optional

import requests
from airbyte_cdk.sources.streams.http.exceptions import BaseBackoffException
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_dixa.errors import UNREACHABLE_PREFIX, first_line
from source_dixa.pacing import PaceStats


def _user_agent() -> str:
    try:
        return f"source-dixa/{importlib.metadata.version('source-dixa')}"
    except importlib.metadata.PackageNotFoundError:
        return "source-dixa"


USER_AGENT = _user_agent()


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def backoff_cause(error: BaseException) -> Optional[BaseBackoffException]:
    """The CDK raises its give-up error from inside the handler of the last backoff exception."""
    cause: Optional[BaseException] = error
    while cause is not None:
        if isinstance(cause, BaseBackoffException):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def user_message(error: AirbyteTracedException) -> str:
    """The table's sentence for the last failed attempt, rather than the CDK's "Exhausted available …" wrapper."""
    cause = backoff_cause(error)
    if cause is not None and cause.args and isinstance(cause.args[0], str) and cause.args[0]:
        return cause.args[0]
    return error.message or "unknown error"


def short(error: BaseException) -> str:
    if isinstance(error, AirbyteTracedException):
        return user_message(error)
    return first_line(error) or type(error).__name__


def is_rate_limited(error: AirbyteTracedException) -> bool:
    cause = backoff_cause(error)
    return cause is not None and isinstance(cause.response, requests.Response) and cause.response.status_code == 429


def is_unreachable(error: AirbyteTracedException) -> bool:
    """Connection refused or name not resolved: retrying the same request differently cannot help."""
    cause = backoff_cause(error)
    message = cause.args[0] if cause is not None and cause.args else None
    return isinstance(message, str) and message.startswith(UNREACHABLE_PREFIX)


def log_stream_summary(logger: logging.Logger, stream_name: str, stats: PaceStats) -> None:
    """One INFO line per stream: what it cost in requests, rate limits and waiting."""
    logger.info(
        f"{stream_name}: {stats.requests} {'request' if stats.requests == 1 else 'requests'}, "
        f"{stats.rate_limited} x 429, {stats.waited_s:.1f} s waiting (pacing and backoff)."
    )
