"""The two rate limiters: a sliding window for the Exports API, a token bucket for the Dixa API.

Neither is thread-safe; the emulator calls them under its lock. A refused request never takes a slot or a token,
otherwise a client polling in a loop could never get back in.
"""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    """At most `limit` admitted requests in any `window_s` seconds (the Exports API's "10 a minute")."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def admit(self, limit: int | None, window_s: float, now: float) -> bool:
        times = self._times
        while times and times[0] <= now - window_s:
            times.popleft()
        if limit is not None and len(times) >= limit:
            return False
        times.append(now)
        return True

    def wait_s(self, limit: int | None, window_s: float, now: float) -> float:
        """Seconds until a slot frees up; 1 when one is free already."""
        times = self._times
        if limit is None or limit <= 0 or len(times) < limit:
            return 1.0
        # The slot that frees first belongs to the request that will leave the window first.
        return times[len(times) - limit] + window_s - now


class TokenBucket:
    """`burst` tokens, refilled at `rate_per_s`; a request takes one (the Dixa API's "10 per second, burst 4")."""

    def __init__(self) -> None:
        self._tokens: float | None = None  # None: full
        self._last = 0.0

    def _refill(self, rate_per_s: float, burst: int, now: float) -> float:
        capacity = float(max(1, burst))
        if self._tokens is None:
            tokens = capacity
        else:
            tokens = min(capacity, self._tokens + max(0.0, now - self._last) * rate_per_s)
        self._tokens, self._last = tokens, now
        return tokens

    def admit(self, rate_per_s: float | None, burst: int, now: float) -> bool:
        if rate_per_s is None:
            self._tokens = None
            return True
        tokens = self._refill(rate_per_s, burst, now)
        if tokens < 1.0:
            return False
        self._tokens = tokens - 1.0
        return True

    def wait_s(self, rate_per_s: float | None, burst: int, now: float) -> float:
        """Seconds until a token is there; one refill interval when one is there already; 1 when off."""
        if rate_per_s is None or rate_per_s <= 0:
            return 1.0
        tokens = self._refill(rate_per_s, burst, now)
        if tokens >= 1.0:
            return 1.0 / rate_per_s
        return (1.0 - tokens) / rate_per_s
