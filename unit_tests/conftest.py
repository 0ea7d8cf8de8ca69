from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from airbyte_cdk.sources.streams.call_rate import APIBudget, MovingWindowCallRatePolicy, Rate
from airbyte_cdk.sources.streams.http.requests_native_auth import TokenAuthenticator

from source_dixa.streams import ConversationExport, DixaExportStream

API_URL = "http://127.0.0.1:8999"
TOKEN = "unit-test-token-0123456789"
NOW_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
DAY_MS = 86_400_000


@pytest.fixture
def make_stream() -> Callable[..., DixaExportStream]:
    def build(
        start_ms: int = NOW_MS - 10 * DAY_MS,
        window_ms: int = 3 * DAY_MS,
        now_ms: int = NOW_MS,
        cls: type[DixaExportStream] = ConversationExport,
        max_retries: int = 2,
    ) -> DixaExportStream:
        budget = APIBudget(
            policies=[MovingWindowCallRatePolicy(rates=[Rate(10_000, timedelta(minutes=1))], matchers=[])]
        )
        return cls(
            api_url=API_URL,
            authenticator=TokenAuthenticator(token=TOKEN),
            start_ms=start_ms,
            window_ms=window_ms,
            api_budget=budget,
            request_interval_s=0.001,
            max_retries=max_retries,
            now_ms=lambda: now_ms,
            sleep=lambda _s: None,
        )

    return build
