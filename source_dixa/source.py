"""SourceDixa: config into typed values, the connection check, and the stream list."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams import Stream
from airbyte_cdk.sources.streams.http.requests_native_auth import TokenAuthenticator
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from typing_extensions import override

from source_dixa.config import (
    DEFAULT_DIXA_API_REQUESTS_PER_SECOND,
    DEFAULT_REQUESTS_PER_MINUTE,
    DixaConfig,
    config_error,
    parse_config,
)
from source_dixa.dixa_api import DixaApiStream, RawTokenAuthenticator, UnusableBody
from source_dixa.dixa_api_streams import (
    ActivityLogs,
    AgentPresence,
    Agents,
    ContactEndpoints,
    CustomAttributes,
    EndUsers,
    QueueMembers,
    Queues,
    Tags,
    TeamMembers,
    Teams,
)
from source_dixa.exports_api import BodyInterrupted, ConversationExport, InvalidResponse, MessageExport
from source_dixa.http_common import user_message, wall_clock_ms
from source_dixa.pacing import AdaptivePacer, Pace
from source_dixa.windows import Window, window_ms_for_days

# `check` asks for the last minute only: enough to prove the token without a backfill.
CHECK_SPAN_MS = 60_000
# The Dixa API streams that need no time window, in the order a sync reads them.
DIXA_API_STREAMS: tuple[type[DixaApiStream], ...] = (
    Agents,
    EndUsers,
    Teams,
    TeamMembers,
    Queues,
    QueueMembers,
    Tags,
    CustomAttributes,
    ContactEndpoints,
    AgentPresence,
)


def exports_pace(requests_per_minute: int) -> Pace:
    # "10 requests/minute per org token" (dixa-exports-api.md §3). The budget counts when we send, Dixa counts when
    # it receives: a second of slack keeps latency jitter from squeezing one request too many into Dixa's minute.
    return Pace(
        api_name="Exports API",
        limit=requests_per_minute,
        window_s=60.0,
        documented=DEFAULT_REQUESTS_PER_MINUTE,
        floor=1.0,
        slack_s=1.0,
    )


def dixa_api_pace(requests_per_second: int) -> Pace:
    # "Rate: 10 requests per second; Bursts: 4 requests" (dixa-api.md §2): evenly spaced, we never burst at all,
    # which leaves Dixa's burst allowance to absorb latency jitter.
    return Pace(
        api_name="Dixa API",
        limit=requests_per_second,
        window_s=1.0,
        documented=DEFAULT_DIXA_API_REQUESTS_PER_SECOND,
        floor=1.0,
        spaced=True,
        unit="a second",
    )


class SourceDixa(AbstractSource):
    def __init__(self, now_ms: Callable[[], int] = wall_clock_ms) -> None:
        super().__init__()
        self._now_ms = now_ms

    @override
    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, Any]:
        dixa = parse_config(config, self._now_ms())
        # One retry only: a person is waiting, and a dead host should say so in seconds.
        streams = self._build_streams(dixa, logger, max_retries=1)
        exports = next(stream for stream in streams if isinstance(stream, ConversationExport))
        now_ms = self._now_ms()
        try:
            exports.probe(Window(now_ms - CHECK_SPAN_MS, now_ms))
        except (InvalidResponse, BodyInterrupted) as error:
            raise config_error(f"{dixa.api_url} answered, but not like the Dixa Exports API: {error}") from None
        except AirbyteTracedException as error:
            raise _as_config_error(error, f"Could not read from the Dixa Exports API at {dixa.api_url}") from None
        teams = next(stream for stream in streams if isinstance(stream, Teams))
        try:
            teams.probe()
        except UnusableBody as error:
            raise config_error(f"{dixa.dixa_api_url} answered, but not like the Dixa API: {error}") from None
        except AirbyteTracedException as error:
            if "(HTTP 403)" in (error.message or ""):
                # Scopes are UNCONFIRMED (dixa-api.md §1): the exports may still work with this token.
                logger.warning(
                    "The Dixa API refused this token for teams (HTTP 403): the account-wide streams (agents, teams, "
                    "queues, tags, end users, ...) will fail unless the token is given access to them."
                )
                return True, None
            raise _as_config_error(error, f"Could not read from the Dixa API at {dixa.dixa_api_url}") from None
        return True, None

    @override
    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        return list(self._build_streams(parse_config(config, self._now_ms()), logging.getLogger("airbyte")))

    def _build_streams(self, dixa: DixaConfig, logger: logging.Logger, max_retries: int = 3) -> list[Stream]:
        # The CDK masks the config's raw api_token; we send it stripped of surrounding blanks, so mask that too.
        add_to_secrets(dixa.api_token)
        # One pacer per service, shared by its streams: Dixa limits requests per token, and the two services
        # document separate limits (dixa-exports-api.md §3, dixa-api.md §2).
        exports_pacer = AdaptivePacer(exports_pace(dixa.requests_per_minute), logger)
        dixa_api_pacer = AdaptivePacer(dixa_api_pace(dixa.dixa_api_requests_per_second), logger)
        exports: dict[str, Any] = {
            "api_url": dixa.api_url,
            "authenticator": TokenAuthenticator(token=dixa.api_token),
            "start_ms": dixa.start_ms,
            "window_ms": window_ms_for_days(dixa.batch_days),
            "pacer": exports_pacer,
            "safety_lag_ms": dixa.safety_lag_ms,
            "max_retries": max_retries,
            "now_ms": self._now_ms,
        }
        dixa_api: dict[str, Any] = {
            "dixa_api_url": dixa.dixa_api_url,
            "authenticator": RawTokenAuthenticator(dixa.api_token),
            "pacer": dixa_api_pacer,
            "max_retries": max_retries,
        }
        activity = ActivityLogs(
            start_ms=dixa.start_ms, safety_lag_ms=dixa.safety_lag_ms, now_ms=self._now_ms, **dixa_api
        )
        return [
            ConversationExport(**exports),
            MessageExport(**exports),
            *(stream(**dixa_api) for stream in DIXA_API_STREAMS),
            activity,
        ]


def _as_config_error(error: AirbyteTracedException, prefix: str) -> AirbyteTracedException:
    """`check` reports every failure as a config error: the person setting up the source acts on it."""
    if error.failure_type == FailureType.config_error:
        return error
    return AirbyteTracedException(
        message=f"{prefix}: {user_message(error)}",
        internal_message=error.internal_message,
        failure_type=FailureType.config_error,
    )
