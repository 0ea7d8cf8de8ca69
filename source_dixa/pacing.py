"""Request pacing per Dixa service: never faster than configured, slower once Dixa says 429, cautious recovery.

The CDK calls `acquire_call` before every attempt and `update_from_response` after every response
(`airbyte_cdk/sources/streams/call_rate.py`, `LimiterMixin.send`), so a budget object sees each request exactly once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from airbyte_cdk.sources.streams.call_rate import APIBudget
from typing_extensions import override

# After a 429 the pace stays where it landed for this many windows' worth of requests before it tries one step
# faster; every step that draws a 429 again doubles the wait before the next one.
PROBE_AFTER_WINDOWS = 10
PROBE_STEP = 1.25


@dataclass(frozen=True)
class Pace:
    """How one Dixa service may be called: at most `limit` requests in any `window_s`."""

    api_name: str
    limit: float
    window_s: float
    # What Dixa documents for the service: the first guess after a configured pace above it draws a 429.
    documented: float
    # The slowest the pacer will go, in requests a window.
    floor: float
    # Extra seconds on the window: the budget counts when we send, Dixa counts when it receives.
    slack_s: float = 0.0
    # Spread requests evenly (one every window/limit) instead of letting `limit` go out at once.
    spaced: bool = False
    unit: str = "a minute"

    def describe(self, limit: float) -> str:
        return f"{limit:g} requests {self.unit}"


@dataclass(frozen=True)
class PaceStats:
    requests: int = 0
    rate_limited: int = 0
    waited_s: float = 0.0

    def since(self, earlier: PaceStats) -> PaceStats:
        return PaceStats(
            self.requests - earlier.requests,
            self.rate_limited - earlier.rate_limited,
            self.waited_s - earlier.waited_s,
        )


class AdaptivePacer(APIBudget):
    """The API budget of one service, shared by all its streams."""

    def __init__(
        self,
        pace: Pace,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(policies=[])
        self.pace = pace
        self._logger = logger
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self.limit = pace.limit
        # The last pace known to hold, and how many good answers a step up must wait for.
        self._proven = pace.limit
        self._probe_windows = PROBE_AFTER_WINDOWS
        self._good_since_change = 0
        self._slowed = False
        self._stats = PaceStats()

    @property
    def interval_s(self) -> float:
        """Seconds between two requests at the current pace."""
        return (self.pace.window_s + self.pace.slack_s) / self.limit

    def stats(self) -> PaceStats:
        with self._lock:
            return self._stats

    def note_wait(self, seconds: float) -> None:
        """Counts a backoff wait the CDK sleeps through, for the per-stream summary."""
        with self._lock:
            self._add(waited_s=seconds)

    @override
    def acquire_call(self, request: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        # One request at a time per service: the streams of a sync read one after another.
        with self._lock:
            wait_s = self._wait_s(self._clock())
            if wait_s > 0:
                self._sleep(wait_s)
            self._sent.append(self._clock())
            self._add(requests=1, waited_s=max(0.0, wait_s))

    @override
    def update_from_response(self, request: Any, response: Any) -> None:
        if getattr(response, "status_code", None) == 429:
            self._slow_down()
        else:
            self._on_answer()

    def _wait_s(self, now: float) -> float:
        span_s = self.pace.window_s + self.pace.slack_s
        sent = self._sent
        while sent and sent[0] <= now - span_s:
            sent.popleft()
        wait_s = 0.0
        if self.pace.spaced and sent:
            wait_s = sent[-1] + self.interval_s - now
        allowed = max(1, int(self.limit))
        if len(sent) >= allowed:
            # The request that leaves the window first makes room.
            wait_s = max(wait_s, sent[len(sent) - allowed] + span_s - now)
        return wait_s

    def _slow_down(self) -> None:
        with self._lock:
            self._add(rate_limited=1)
            pace = self.pace
            if self._slowed:
                # No answer got through since the last slowdown: Dixa is still holding the same limit against us,
                # and the backoff waits it out. The pace is about what comes after, so it drops once per episode.
                self._logger.info(f"{pace.api_name}: still rate limited; waiting at {pace.describe(self.limit)}.")
                return
            self._slowed = True
            if self.limit > self._proven:
                new, why = self._proven, "back to the last pace that held"
                self._probe_windows *= 2
            elif self.limit > pace.documented:
                new, why = pace.documented, "Dixa's documented limit"
            else:
                new, why = self.limit / 2, "half the pace that drew it"
            if not pace.spaced:
                # A limit per window: the requests Dixa took in this window before refusing one are at most it.
                taken = self._taken_in_window(self._clock())
                if 0 < taken < new:
                    new, why = taken, f"the {taken} Dixa took in the last window before refusing one"
            new = max(pace.floor, new)
            self._good_since_change = 0
            self._proven = new
            if new < self.limit:
                self._logger.warning(
                    f"{pace.api_name}: Dixa answered 429 (rate limited); slowing to {pace.describe(new)} "
                    f"({why}) for the rest of this sync."
                )
            else:
                self._logger.info(
                    f"{pace.api_name}: Dixa answered 429 (rate limited) at {pace.describe(new)}, the slowest pace "
                    "this connector uses; waiting and trying again."
                )
            self.limit = new

    def _taken_in_window(self, now: float) -> int:
        """Requests sent in the current window, less the one Dixa just refused."""
        span_s = self.pace.window_s + self.pace.slack_s
        return sum(1 for sent_at in self._sent if sent_at > now - span_s) - 1

    def _on_answer(self) -> None:
        with self._lock:
            self._slowed = False
            if self.limit >= self.pace.limit:
                return
            self._good_since_change += 1
            probe_after = max(1, int(self.limit)) * self._probe_windows
            if self._good_since_change < probe_after:
                return
            self._proven = self.limit
            self._good_since_change = 0
            self.limit = min(self.pace.limit, max(self.limit + 1, self.limit * PROBE_STEP))
            self._logger.info(
                f"{self.pace.api_name}: no 429 for {probe_after} requests; trying {self.pace.describe(self.limit)}."
            )

    def _add(self, requests: int = 0, rate_limited: int = 0, waited_s: float = 0.0) -> None:
        stats = self._stats
        self._stats = PaceStats(stats.requests + requests, stats.rate_limited + rate_limited, stats.waited_s + waited_s)
