"""Pure window arithmetic on integer Unix milliseconds: no clock, no I/O, no CDK."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Optional

DAY_MS = 86_400_000
# "no query can span more than 1 month (31 days)" (Exports API guide; ../shared/docs/dixa-exports-api.md §1).
MAX_REQUEST_SPAN_MS = 31 * DAY_MS
# Each request asks for one extra millisecond below the window (see `query_bounds`), so a window may be at most
# one millisecond shorter than the request limit.
MAX_WINDOW_MS = MAX_REQUEST_SPAN_MS - 1


@dataclass(frozen=True)
class Window:
    """A half-open time range `[start_ms, end_ms)`: a record belongs to it when `start_ms <= t < end_ms`."""

    start_ms: int
    end_ms: int

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms

    def contains(self, t_ms: int) -> bool:
        return self.start_ms <= t_ms < self.end_ms

    def halves(self) -> tuple[Window, Window]:
        """Split into two contiguous windows; the first gets the odd millisecond."""
        mid_ms = self.start_ms + (self.span_ms + 1) // 2
        return Window(self.start_ms, mid_ms), Window(mid_ms, self.end_ms)

    def describe(self) -> str:
        return f"[{ms_to_iso(self.start_ms)}, {ms_to_iso(self.end_ms)})"

    def as_slice(self) -> dict[str, int]:
        """The window as a CDK stream slice."""
        return {"start_ms": self.start_ms, "end_ms": self.end_ms}

    @classmethod
    def of_slice(cls, stream_slice: Optional[Mapping[str, Any]]) -> Window:
        """The window a CDK stream slice stands for.

        >>> Window.of_slice(Window(0, 10).as_slice())
        Window(start_ms=0, end_ms=10)
        """
        if not stream_slice:
            raise ValueError("every request belongs to a window slice")
        return cls(int(stream_slice["start_ms"]), int(stream_slice["end_ms"]))


def contiguous_end_ms(contiguous_ms: int, read: Window) -> Optional[int]:
    """The end of the windows read whole without a gap, once `read` has been read whole too.

    None when `read` starts past it: an earlier window was abandoned (e.g. by the CDK's record `_limit`), and state
    must not move past that gap.

    >>> contiguous_end_ms(10, Window(10, 20)), contiguous_end_ms(10, Window(15, 20))
    (20, None)
    """
    if read.start_ms <= contiguous_ms:
        return max(contiguous_ms, read.end_ms)
    return None


def window_ms_for_days(days: int) -> int:
    """The longest window for a `batch_size` of `days`, capped so no request exceeds the API's 31-day limit.

    >>> window_ms_for_days(1)
    86400000
    >>> window_ms_for_days(31) == MAX_WINDOW_MS
    True
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    return min(days * DAY_MS, MAX_WINDOW_MS)


def iter_windows(start_ms: int, end_ms: int, max_span_ms: int) -> Iterator[Window]:
    """Cover `[start_ms, end_ms)` with contiguous windows of at most `max_span_ms`; nothing if the range is empty.

    >>> [(w.start_ms, w.end_ms) for w in iter_windows(0, 25, 10)]
    [(0, 10), (10, 20), (20, 25)]
    """
    if max_span_ms <= 0:
        raise ValueError(f"max_span_ms must be positive, got {max_span_ms}")
    cursor_ms = start_ms
    while cursor_ms < end_ms:
        window = next_window(cursor_ms, end_ms, max_span_ms)
        yield window
        cursor_ms = window.end_ms


def next_window(cursor_ms: int, end_ms: int, max_span_ms: int) -> Window:
    """The window that starts at `cursor_ms`: `max_span_ms` long, or shorter where the range ends.

    >>> next_window(0, 25, 10), next_window(20, 25, 10)
    (Window(start_ms=0, end_ms=10), Window(start_ms=20, end_ms=25))
    """
    if max_span_ms <= 0:
        raise ValueError(f"max_span_ms must be positive, got {max_span_ms}")
    if cursor_ms >= end_ms:
        raise ValueError(f"empty range [{cursor_ms}, {end_ms})")
    return Window(cursor_ms, min(cursor_ms + max_span_ms, end_ms))


def query_bounds(window: Window) -> tuple[int, int]:
    """The `(_after, _before)` values that fetch every record of `window`, however the API treats its bounds.

    The docs don't say whether `_after`/`_before` are inclusive (dixa-exports-api.md §1). Asking for
    `(start - 1, end)` returns a superset of `[start, end)` under all four readings: an exclusive `_after`
    starts at `start`, an inclusive one at `start - 1`; an exclusive `_before` stops below `end`, an
    inclusive one at `end`. The stream then keeps only `start <= t < end`, so a record on a boundary
    belongs to exactly one window.
    """
    return window.start_ms - 1, window.end_ms


def ms_to_iso(t_ms: int) -> str:
    """Render Unix milliseconds as an ISO-8601 UTC string, for logs and messages."""
    moment = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
    if t_ms % 1000:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def next_span_ms(span_ms: int, pages: int, min_span_ms: int, max_span_ms: int, busy_pages: int) -> int:
    """The span of the next window, from how many pages the last one took.

    A window that fit in one page was mostly empty: double the next, so a quiet year is a few dozen requests.
    One that took more than `busy_pages` pages halves the next, so a killed sync loses at most about that much work.

    >>> next_span_ms(10, 1, 5, 40, 8), next_span_ms(10, 9, 5, 40, 8), next_span_ms(10, 4, 5, 40, 8)
    (20, 5, 10)
    """
    if pages <= 1:
        return min(max_span_ms, span_ms * 2)
    if pages > busy_pages:
        return max(min_span_ms, span_ms // 2)
    return span_ms
