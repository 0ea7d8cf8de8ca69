"""What the streams of both Dixa services share: the base stream with pacing and backoff, who we say we are, the clock,
and reading the CDK's give-up errors."""

from __future__ import annotations

import importlib.metadata
import logging
import time
from abc import ABC
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Optional, Union

import requests
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.streams.http import HttpStream
from airbyte_cdk.sources.streams.http.error_handlers import BackoffStrategy
from airbyte_cdk.sources.streams.http.exceptions import BaseBackoffException
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from requests.auth import AuthBase
from typing_extensions import override

from source_dixa.errors import UNREACHABLE_PREFIX, DixaBackoffStrategy, first_line, quiet_give_up_logs
from source_dixa.pacing import AdaptivePacer, PaceStats


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


class PacedStream(HttpStream, ABC):
    """An HttpStream of either service: its service's pacer as the CDK's budget, a backoff that follows the pace,
    honest headers, quiet give-up logs, and one summary line per stream."""

    def __init__(
        self,
        *,
        authenticator: AuthBase,
        pacer: AdaptivePacer,
        max_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # Read by get_error_handler/get_backoff_strategy, which HttpStream.__init__ calls.
        self._max_retries = max_retries
        self._backoff = DixaBackoffStrategy(lambda: pacer.interval_s, on_wait=pacer.note_wait)
        super().__init__(authenticator=authenticator, api_budget=pacer)
        quiet_give_up_logs(self.logger)
        self._pacer = pacer
        self._sleep = sleep

    @override
    def request_headers(
        self,
        stream_state: Optional[Mapping[str, Any]],
        stream_slice: Optional[Mapping[str, Any]] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Mapping[str, Any]:
        return {"Accept": "application/json", "User-Agent": USER_AGENT}

    @override
    def get_backoff_strategy(self) -> Optional[Union[BackoffStrategy, list[BackoffStrategy]]]:
        return self._backoff

    @override
    def read(self, *args: Any, **kwargs: Any) -> Iterable[StreamData]:
        before = self._pacer.stats()
        try:
            yield from super().read(*args, **kwargs)
        finally:
            log_stream_summary(self.logger, self.name, self._pacer.stats().since(before))
