from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from airbyte_cdk.sources.streams.http.requests_native_auth import TokenAuthenticator

from source_dixa.exports_api import ConversationExport, DixaExportStream
from source_dixa.pacing import AdaptivePacer, Pace

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
        pace = Pace("Exports API", limit=60_000, window_s=60.0, documented=10, floor=1.0)
        return cls(
            api_url=API_URL,
            authenticator=TokenAuthenticator(token=TOKEN),
            start_ms=start_ms,
            window_ms=window_ms,
            pacer=AdaptivePacer(pace, logging.getLogger("test"), sleep=lambda _s: None),
            max_retries=max_retries,
            now_ms=lambda: now_ms,
            sleep=lambda _s: None,
        )

    return build
