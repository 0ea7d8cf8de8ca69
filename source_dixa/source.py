"""SourceDixa: config into typed values, the connection check, and the stream list."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams import Stream
from airbyte_cdk.sources.streams.call_rate import APIBudget, MovingWindowCallRatePolicy, Rate
from airbyte_cdk.sources.streams.http.requests_native_auth import TokenAuthenticator
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from typing_extensions import override

from source_dixa.config import DixaConfig, config_error, parse_config
from source_dixa.streams import (
    BodyInterrupted,
    ConversationExport,
    DixaExportStream,
    InvalidResponse,
    MessageExport,
    user_message,
    wall_clock_ms,
)
from source_dixa.windows import Window, window_ms_for_days

# `check` asks for the last minute only: enough to prove the token without a backfill.
CHECK_SPAN_MS = 60_000
# The budget counts when we send, Dixa counts when it receives: a second of slack keeps latency jitter from
# squeezing one request too many into Dixa's minute.
PACING_WINDOW = timedelta(minutes=1, seconds=1)


class SourceDixa(AbstractSource):
    def __init__(self, now_ms: Callable[[], int] = wall_clock_ms) -> None:
        super().__init__()
        self._now_ms = now_ms

    @override
    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, Any]:
        dixa = parse_config(config, self._now_ms())
        # One retry only: a person is waiting, and a dead host should say so in seconds.
        stream = self._build_streams(dixa, max_retries=1)[0]
        now_ms = self._now_ms()
        probe = Window(now_ms - CHECK_SPAN_MS, now_ms)
        try:
            stream.probe(probe)
        except (InvalidResponse, BodyInterrupted) as error:
            raise config_error(f"{dixa.api_url} answered, but not like the Dixa Exports API: {error}") from None
        except AirbyteTracedException as error:
            if error.failure_type == FailureType.config_error:
                raise
            message = f"Could not read from the Dixa Exports API at {dixa.api_url}: {user_message(error)}"
            raise AirbyteTracedException(
                message=message, internal_message=error.internal_message, failure_type=FailureType.config_error
            ) from None
        return True, None

    @override
    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        return list(self._build_streams(parse_config(config, self._now_ms())))

    def _build_streams(self, dixa: DixaConfig, max_retries: int = 3) -> list[DixaExportStream]:
        # The CDK masks the config's raw api_token; we send it stripped of surrounding blanks, so mask that too.
        add_to_secrets(dixa.api_token)
        # One budget for all streams: Dixa limits requests per token, not per endpoint (dixa-exports-api.md §3).
        budget = APIBudget(
            policies=[MovingWindowCallRatePolicy(rates=[Rate(dixa.requests_per_minute, PACING_WINDOW)], matchers=[])]
        )
        shared: dict[str, Any] = {
            "api_url": dixa.api_url,
            "authenticator": TokenAuthenticator(token=dixa.api_token),
            "start_ms": dixa.start_ms,
            "window_ms": window_ms_for_days(dixa.batch_days),
            "api_budget": budget,
            "request_interval_s": 60.0 / dixa.requests_per_minute,
            "max_retries": max_retries,
            "now_ms": self._now_ms,
        }
        return [ConversationExport(**shared), MessageExport(**shared)]
