from __future__ import annotations

import itertools

import pytest

from source_dixa.windows import (
    DAY_MS,
    MAX_REQUEST_SPAN_MS,
    MAX_WINDOW_MS,
    Window,
    iter_windows,
    ms_to_iso,
    query_bounds,
    window_ms_for_days,
)


def test_iter_windows_empty_range_yields_nothing() -> None:
    assert list(iter_windows(100, 100, 10)) == []
    assert list(iter_windows(200, 100, 10)) == []


@pytest.mark.parametrize(("length", "expected"), [(9, 1), (10, 1), (11, 2)])
def test_iter_windows_around_max_span(length: int, expected: int) -> None:
    windows = list(iter_windows(1000, 1000 + length, 10))
    assert len(windows) == expected
    assert all(w.span_ms <= 10 for w in windows)


@pytest.mark.parametrize("span", [0, -1])
def test_iter_windows_rejects_non_positive_span(span: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        list(iter_windows(0, 10, span))


@pytest.mark.parametrize(("start", "end", "span"), [(0, 1, 1), (5, 1000, 7), (0, 100 * DAY_MS + 3, MAX_WINDOW_MS)])
def test_iter_windows_are_contiguous_and_cover_the_range(start: int, end: int, span: int) -> None:
    windows = list(iter_windows(start, end, span))
    assert windows[0].start_ms == start
    assert windows[-1].end_ms == end
    for first, second in itertools.pairwise(windows):
        assert first.end_ms == second.start_ms


def test_every_millisecond_belongs_to_exactly_one_window() -> None:
    windows = list(iter_windows(0, 50, 7))
    for t_ms in range(-1, 51):
        owners = [w for w in windows if w.contains(t_ms)]
        assert len(owners) == (1 if 0 <= t_ms < 50 else 0)


def test_window_ms_for_days_caps_at_the_api_limit() -> None:
    assert window_ms_for_days(1) == DAY_MS
    assert window_ms_for_days(30) == 30 * DAY_MS
    assert window_ms_for_days(31) == MAX_REQUEST_SPAN_MS - 1
    with pytest.raises(ValueError, match="at least 1"):
        window_ms_for_days(0)


@pytest.mark.parametrize("days", [1, 7, 31])
def test_no_request_spans_more_than_31_days(days: int) -> None:
    for window in iter_windows(0, 400 * DAY_MS, window_ms_for_days(days)):
        after_ms, before_ms = query_bounds(window)
        assert before_ms - after_ms <= MAX_REQUEST_SPAN_MS


@pytest.mark.parametrize(("after_inclusive", "before_inclusive"), list(itertools.product([False, True], repeat=2)))
def test_boundary_records_belong_to_one_window_under_every_bound_reading(
    after_inclusive: bool, before_inclusive: bool
) -> None:
    """Simulate the API's filter for each reading, then the stream's [start, end) filter."""
    timestamps = list(range(0, 31))
    windows = list(iter_windows(0, 31, 10))
    emitted: list[int] = []
    for window in windows:
        after_ms, before_ms = query_bounds(window)
        served = [
            t
            for t in timestamps
            if (t >= after_ms if after_inclusive else t > after_ms)
            and (t <= before_ms if before_inclusive else t < before_ms)
        ]
        emitted.extend(t for t in served if window.contains(t))
    assert sorted(emitted) == timestamps


def test_halves_are_contiguous_and_nonempty() -> None:
    first, second = Window(0, 11).halves()
    assert (first.start_ms, first.end_ms, second.start_ms, second.end_ms) == (0, 6, 6, 11)
    first, second = Window(0, 2).halves()
    assert first.span_ms == 1 and second.span_ms == 1


def test_ms_to_iso_is_utc() -> None:
    assert ms_to_iso(0) == "1970-01-01T00:00:00Z"
    assert ms_to_iso(1_704_067_200_123) == "2024-01-01T00:00:00.123Z"
