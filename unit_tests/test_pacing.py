from __future__ import annotations

import itertools
import logging

import pytest

from source_dixa.pacing import PROBE_AFTER_WINDOWS, AdaptivePacer, Pace


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Answer:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


EXPORTS = Pace("Exports API", limit=60, window_s=60.0, documented=10, floor=1.0, slack_s=1.0)
DIXA_API = Pace("Dixa API", limit=40, window_s=1.0, documented=10, floor=1.0, spaced=True, unit="a second")


def _pacer(pace: Pace, clock: FakeClock) -> AdaptivePacer:
    return AdaptivePacer(pace, logging.getLogger("test.pacing"), clock=clock, sleep=clock.sleep)


def test_window_pace_lets_a_burst_through_then_waits_for_the_oldest_to_leave_the_window() -> None:
    clock = FakeClock()
    pacer = _pacer(Pace("Exports API", limit=3, window_s=60.0, documented=10, floor=1.0, slack_s=1.0), clock)
    for _ in range(3):
        pacer.acquire_call(None)
    assert clock.sleeps == []
    pacer.acquire_call(None)
    assert clock.sleeps == [pytest.approx(61.0)]


def test_spaced_pace_never_sends_two_requests_closer_than_one_interval() -> None:
    clock = FakeClock()
    pacer = _pacer(Pace("Dixa API", limit=10, window_s=1.0, documented=10, floor=1.0, spaced=True), clock)
    sent = []
    for _ in range(25):
        pacer.acquire_call(None)
        sent.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) == pytest.approx(0.1)
    # Never more than 10 in any second, and never a burst: the burst of 4 Dixa allows is left as slack.
    assert all(sum(1 for t in sent if start <= t < start + 1.0) <= 10 for start in sent)


def test_a_429_above_the_documented_limit_drops_to_it_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    pacer = _pacer(EXPORTS, clock)
    with caplog.at_level(logging.INFO, logger="test.pacing"):
        pacer.update_from_response(None, Answer(429))
    assert pacer.limit == 10
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "slowing to 10 requests a minute" in warnings[0]


def test_429s_at_or_below_the_documented_limit_halve_the_pace_down_to_the_floor() -> None:
    clock = FakeClock()
    pacer = _pacer(Pace("Exports API", limit=10, window_s=60.0, documented=10, floor=2.0), clock)
    limits = []
    for _ in range(4):
        pacer.update_from_response(None, Answer(429))
        limits.append(pacer.limit)
        pacer.update_from_response(None, Answer(200))
    assert limits == [5.0, 2.5, 2.0, 2.0]
    assert pacer.stats().rate_limited == 4


def test_after_a_slowdown_the_window_already_used_is_respected() -> None:
    # 60 a minute allowed 10 requests at once; the 11th drew a 429: the next one waits for the minute to pass.
    clock = FakeClock()
    pacer = _pacer(EXPORTS, clock)
    for _ in range(11):
        pacer.acquire_call(None)
        pacer.update_from_response(None, Answer(200))
    pacer.update_from_response(None, Answer(429))
    pacer.acquire_call(None)
    assert clock.sleeps[-1] == pytest.approx(61.0)


def test_recovery_probes_one_step_up_and_falls_back_if_dixa_objects() -> None:
    clock = FakeClock()
    pacer = _pacer(DIXA_API, clock)
    pacer.update_from_response(None, Answer(429))
    assert pacer.limit == 10
    for _ in range(10 * PROBE_AFTER_WINDOWS):
        pacer.update_from_response(None, Answer(200))
    assert pacer.limit == 12.5
    pacer.update_from_response(None, Answer(429))
    assert pacer.limit == 10
    # The next probe waits twice as long.
    for _ in range(10 * PROBE_AFTER_WINDOWS):
        pacer.update_from_response(None, Answer(200))
    assert pacer.limit == 10
    for _ in range(10 * PROBE_AFTER_WINDOWS):
        pacer.update_from_response(None, Answer(200))
    assert pacer.limit == 12.5


def test_the_pace_never_goes_above_the_configured_one() -> None:
    clock = FakeClock()
    pacer = _pacer(Pace("Dixa API", limit=10, window_s=1.0, documented=10, floor=1.0, spaced=True), clock)
    for _ in range(1000):
        pacer.update_from_response(None, Answer(200))
    assert pacer.limit == 10


def test_stats_count_requests_429s_and_time_waited() -> None:
    clock = FakeClock()
    pacer = _pacer(Pace("Dixa API", limit=10, window_s=1.0, documented=10, floor=1.0, spaced=True), clock)
    before = pacer.stats()
    for _ in range(3):
        pacer.acquire_call(None)
    pacer.update_from_response(None, Answer(429))
    pacer.note_wait(1.5)
    spent = pacer.stats().since(before)
    assert (spent.requests, spent.rate_limited) == (3, 1)
    assert spent.waited_s == pytest.approx(0.2 + 1.5)


def test_a_429_after_fewer_requests_than_the_documented_limit_takes_that_count_as_the_limit() -> None:
    # Another tool shares the token: Dixa took 3 requests this minute, then refused the 4th.
    clock = FakeClock()
    pacer = _pacer(EXPORTS, clock)
    for _ in range(4):
        pacer.acquire_call(None)
    pacer.update_from_response(None, Answer(429))
    assert pacer.limit == 3
    pacer.acquire_call(None)
    assert clock.sleeps[-1] == pytest.approx(61.0)


def test_a_spaced_pace_ignores_the_window_count_after_a_burst() -> None:
    # The Dixa API's limit is a rate with a burst allowance: 5 quick successes say nothing about the rate.
    clock = FakeClock()
    pacer = _pacer(DIXA_API, clock)
    for _ in range(6):
        pacer.acquire_call(None)
    pacer.update_from_response(None, Answer(429))
    assert pacer.limit == 10


def test_429s_in_a_row_without_an_answer_between_slow_down_once() -> None:
    clock = FakeClock()
    pacer = _pacer(EXPORTS, clock)
    for _ in range(5):
        pacer.update_from_response(None, Answer(429))
    assert pacer.limit == 10
    pacer.update_from_response(None, Answer(200))
    pacer.update_from_response(None, Answer(429))
    assert pacer.limit == 5
    assert pacer.stats().rate_limited == 6
