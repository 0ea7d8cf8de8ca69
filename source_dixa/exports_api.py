"""The Exports API (exports.dixa.io): a base stream with the window, state, retry and parse logic; data-only leaves."""

from __future__ import annotations

import time
from abc import ABC
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from datetime import timedelta
from typing import Any, Optional, Union, cast

import ijson
import requests
import urllib3
from airbyte_cdk.models import (
    AirbyteEstimateTraceMessage,
    AirbyteTraceMessage,
    EstimateType,
    FailureType,
    SyncMode,
    TraceType,
)
from airbyte_cdk.sources.streams.http.error_handlers import ErrorHandler
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from requests.auth import AuthBase
from typing_extensions import override

from source_dixa.config import config_error
from source_dixa.errors import DixaErrorHandler
from source_dixa.http_common import (
    PacedStream,
    is_rate_limited,
    is_unreachable,
    short,
    wall_clock_ms,
)
from source_dixa.pacing import AdaptivePacer
from source_dixa.windows import Window, contiguous_end_ms, ms_to_iso, next_window, query_bounds

# Connect quickly or not at all; between bytes a large export may pause while Dixa assembles it.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 300.0
# Fresh attempts at one window when its body breaks off or is unusable, before splitting or giving up.
BODY_ATTEMPTS = 3
# A window that keeps failing is halved down to this span; below it, splitting no longer helps.
MIN_SPLIT_MS = 60 * 60 * 1000
JSON_CONTENT_TYPES = ("application/json", "text/json")


class BodyInterrupted(Exception):
    """The response body ended or broke before its JSON array closed: the whole window must be read again."""


class InvalidResponse(Exception):
    """A 200 response that is not the JSON array of records the Exports API documents."""


class DixaExportStream(PacedStream, ABC):
    """An Exports API endpoint read in half-open time windows, with one STATE checkpoint per window.

    Leaves set `cursor_field` and the `after_param`/`before_param` pair that filters on it.
    """

    primary_key = "id"
    cursor_field: str
    after_param: str
    before_param: str

    def __init__(
        self,
        *,
        api_url: str,
        authenticator: AuthBase,
        start_ms: int,
        window_ms: int,
        pacer: AdaptivePacer,
        safety_lag_ms: int = 0,
        max_retries: int = 3,
        now_ms: Callable[[], int] = wall_clock_ms,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(authenticator=authenticator, pacer=pacer, max_retries=max_retries, sleep=sleep)
        self._url_base = f"{api_url}/v1/"
        self._start_ms = start_ms
        self._window_ms = window_ms
        self._safety_lag_ms = safety_lag_ms
        self._now_ms = now_ms
        self._state: MutableMapping[str, Any] = {}
        # Progress of the current sync, for the per-window log line and the ESTIMATE trace.
        self._sync_start_ms = 0
        self._sync_end_ms = 0
        self._windows_done = 0
        self._records_read = 0
        # Ids emitted in the current window, so a window re-read after a failure does not repeat them.
        self._window_ids: set[Any] = set()
        self._window_emitted = 0
        # The end of the windows read whole so far, without a gap: state never passes a window left unfinished.
        self._contiguous_ms = 0

    @property
    @override
    def url_base(self) -> str:
        return self._url_base

    @override
    def path(self, **kwargs: Any) -> str:
        return self.name

    @override
    def next_page_token(self, response: requests.Response) -> Optional[Mapping[str, Any]]:
        # "There are no offset or limit pagination rules" (dixa-exports-api.md §1): one response per window.
        return None

    @override
    def request_params(
        self,
        stream_state: Optional[Mapping[str, Any]],
        stream_slice: Optional[Mapping[str, Any]] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> MutableMapping[str, Any]:
        after_ms, before_ms = query_bounds(Window.of_slice(stream_slice))
        return {self.after_param: after_ms, self.before_param: before_ms}

    @override
    def request_kwargs(
        self,
        stream_state: Optional[Mapping[str, Any]],
        stream_slice: Optional[Mapping[str, Any]] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Mapping[str, Any]:
        # Stream the body: one window can be hundreds of megabytes (dixa-exports-api.md §6).
        return {"stream": True, "timeout": (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)}

    @override
    def get_error_handler(self) -> Optional[ErrorHandler]:
        return DixaErrorHandler(self.logger, max_retries=self._max_retries, max_time=timedelta(hours=1))

    @property
    @override
    def state(self) -> MutableMapping[str, Any]:
        return self._state

    @state.setter
    @override
    def state(self, value: MutableMapping[str, Any]) -> None:
        cursor_ms = parse_state_value((value or {}).get(self.cursor_field), self.name, self.cursor_field)
        self._state = {} if cursor_ms is None else {self.cursor_field: cursor_ms}

    @property
    def _state_ms(self) -> Optional[int]:
        value = self._state.get(self.cursor_field)
        return value if isinstance(value, int) else None

    @override
    def stream_slices(
        self,
        *,
        sync_mode: SyncMode,
        cursor_field: Optional[list[str]] = None,
        stream_state: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Optional[Mapping[str, Any]]]:
        start_ms = self._start_ms
        if sync_mode == SyncMode.incremental and self._state_ms is not None:
            start_ms = max(start_ms, self._state_ms)
        # Windows end a safety lag before now: what Dixa shows that late is still read (README, "Safety lag").
        end_ms = self._now_ms() - self._safety_lag_ms
        self._sync_start_ms, self._sync_end_ms, self._windows_done, self._records_read = start_ms, end_ms, 0, 0
        self._contiguous_ms = start_ms
        if start_ms >= end_ms:
            self.logger.info(f"{self.name}: nothing to read, already up to date at {ms_to_iso(start_ms)}.")
            return
        # Lazily, one window at a time: a window that had to be split shrinks the ones after it.
        cursor_ms = start_ms
        while cursor_ms < end_ms:
            window = next_window(cursor_ms, end_ms, self._window_ms)
            yield window.as_slice()
            cursor_ms = window.end_ms

    @override
    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: Optional[list[str]] = None,
        stream_slice: Optional[Mapping[str, Any]] = None,
        stream_state: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Union[Mapping[str, Any], AirbyteTraceMessage]]:
        window = Window.of_slice(stream_slice)
        started_s = time.monotonic()
        self._window_ids, self._window_emitted = set(), 0
        yield from self._read_window(window)
        # Only now is every record of the window emitted; the CDK checkpoints right after this slice.
        contiguous_ms = contiguous_end_ms(self._contiguous_ms, window)
        if contiguous_ms is not None:
            self._contiguous_ms = contiguous_ms
            if self._state_ms is None or contiguous_ms > self._state_ms:
                self._state = {self.cursor_field: contiguous_ms}
        self._windows_done += 1
        windows_left = -(-(self._sync_end_ms - window.end_ms) // self._window_ms)
        self.logger.info(
            f"{self.name}: window {self._windows_done} {window.describe()} done, "
            f"{self._window_emitted} records in {time.monotonic() - started_s:.1f} s, "
            f"{windows_left} {'window' if windows_left == 1 else 'windows'} left."
        )
        self._records_read += self._window_emitted
        self._window_ids = set()
        yield self._estimate(window)

    def _estimate(self, done: Window) -> AirbyteTraceMessage:
        """Rows expected for this sync, extrapolated from the time covered so far, so the UI can show progress."""
        covered_ms = max(1, done.end_ms - self._sync_start_ms)
        total_ms = max(covered_ms, self._sync_end_ms - self._sync_start_ms)
        estimate = AirbyteEstimateTraceMessage(
            name=self.name, type=EstimateType.STREAM, row_estimate=self._records_read * total_ms // covered_ms
        )
        return AirbyteTraceMessage(type=TraceType.ESTIMATE, emitted_at=time.time() * 1000, estimate=estimate)

    def probe(self, window: Window) -> int:
        """Read one window with the CDK's retries only (no splitting, no waiting out rate limits); count records."""
        return sum(1 for _ in super().read_records(SyncMode.full_refresh, stream_slice=window.as_slice()))

    def _read_window(self, window: Window) -> Iterator[Mapping[str, Any]]:
        """Read one window whole; retry it, or split it in halves when Dixa keeps failing on it."""
        if window.span_ms > self._window_ms:
            # An earlier window of this size had to be split; don't make Dixa fail on this one first.
            yield from self._read_halves(window)
            return
        body_failures = 0
        while True:
            try:
                # parse_response yields only records; the CDK's type also admits messages.
                yield from cast(
                    Iterable[Mapping[str, Any]],
                    super().read_records(SyncMode.full_refresh, stream_slice=window.as_slice()),
                )
                return
            except AirbyteTracedException as error:
                if is_rate_limited(error):
                    # A rate limit is not a failure: the CDK has waited on it, and the pacer has slowed down (and
                    # said so); keep asking as long as Dixa says so.
                    self.logger.info(f"{self.name}: still rate limited on {window.describe()}; waiting on.")
                    continue
                if error.failure_type != FailureType.transient_error or is_unreachable(error):
                    raise
                failure: Exception = error
            except (BodyInterrupted, InvalidResponse) as error:
                body_failures += 1
                if body_failures < BODY_ATTEMPTS:
                    wait_s = self._backoff.fallback_s(body_failures)
                    self.logger.warning(f"{self.name}: {error} Reading {window.describe()} again in {wait_s:.1f} s.")
                    self._sleep(wait_s)
                    continue
                if isinstance(error, InvalidResponse):
                    # Smaller windows would get the same answer: this is not the server struggling.
                    raise AirbyteTracedException(
                        message=f"Dixa's answer for {self.name} {window.describe()} was not usable: {error}",
                        internal_message=str(error),
                        failure_type=FailureType.system_error,
                    ) from None
                failure = error
            yield from self._split_or_fail(window, failure)
            return

    def _split_or_fail(self, window: Window, failure: Exception) -> Iterator[Mapping[str, Any]]:
        if window.span_ms <= MIN_SPLIT_MS:
            raise AirbyteTracedException(
                message=(
                    f"Dixa kept failing on {self.name} {window.describe()}, even in windows of one hour; "
                    f"the next sync resumes from the last completed window. Last error: {short(failure)}"
                ),
                internal_message=str(failure),
                failure_type=FailureType.transient_error,
            ) from None
        first, second = window.halves()
        self._window_ms = min(self._window_ms, first.span_ms)
        self.logger.warning(
            f"{self.name}: Dixa kept failing on {window.describe()} ({short(failure)}); "
            f"splitting it into {first.describe()} and {second.describe()}, "
            f"and reading the rest of this sync in windows of at most {self._window_ms / 3_600_000:.1f} hours."
        )
        yield from self._read_halves(window)

    def _read_halves(self, window: Window) -> Iterator[Mapping[str, Any]]:
        first, second = window.halves()
        yield from self._read_window(first)
        yield from self._read_window(second)

    @override
    def parse_response(
        self,
        response: requests.Response,
        *,
        stream_state: Optional[Mapping[str, Any]] = None,
        stream_slice: Optional[Mapping[str, Any]] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Mapping[str, Any]]:
        window = Window.of_slice(stream_slice)
        content_type = response.headers.get("Content-Type", "")
        if content_type and not content_type.lower().startswith(JSON_CONTENT_TYPES):
            self.logger.warning(f"{self.name}: Dixa answered with Content-Type '{content_type}'; parsing it as JSON.")
        # Parse as the bytes arrive, so memory stays flat however large the window (ijson ships with the CDK).
        response.raw.decode_content = True
        body = _PeekingReader(response.raw)
        start_ms, end_ms = window.start_ms, window.end_ms
        cursor, seen = self.cursor_field, self._window_ids
        outside = 0
        try:
            for record in ijson.items(body, "item", use_float=True):
                try:
                    cursor_ms = record[cursor]
                except (KeyError, TypeError):
                    raise InvalidResponse(f"a record has no '{cursor}' (id {_id_of(record)}).") from None
                if type(cursor_ms) is not int:
                    cursor_ms = _as_ms(cursor_ms, cursor)
                # The request asked one millisecond wider than the window on each side (windows.query_bounds).
                if start_ms <= cursor_ms < end_ms:
                    record_id = record.get("id")
                    if record_id is not None:
                        try:
                            if record_id in seen:
                                continue
                            seen.add(record_id)
                        except TypeError:
                            raise InvalidResponse(f"a record's id is {record_id!r}, not a number or string.") from None
                    self._window_emitted += 1
                    yield record
                elif cursor_ms < start_ms - 1 or cursor_ms > end_ms:
                    outside += 1
        except ijson.JSONError as error:
            # yajl reports every syntax error as "incomplete"; what came first tells a cut-off array from junk.
            if body.first_byte == b"[":
                raise BodyInterrupted(
                    f"The response for {window.describe()} ended before its JSON array closed."
                ) from None
            raise InvalidResponse(
                f"the body is not a JSON array (Content-Type '{content_type or 'none'}', "
                f"starts with {body.first_byte!r}: {short(error)})."
            ) from None
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as error:
            raise BodyInterrupted(f"The response for {window.describe()} broke off: {short(error)}.") from None
        finally:
            response.close()
        if outside:
            # No reading of the bounds explains these; Dixa may filter on something else than the field we check.
            self.logger.warning(
                f"{self.name}: Dixa returned {outside} records for {window.describe()} whose {cursor} lies outside "
                "the requested range; they belong to other windows and were not emitted here."
            )
        if body.first_byte != b"[":
            raise InvalidResponse(
                f"the body is not a JSON array (it starts with {body.first_byte!r}, Content-Type "
                f"'{content_type or 'none'}')."
            )


class ConversationExport(DixaExportStream):
    """GET /v1/conversation_export: https://docs.dixa.io/openapi/exports-api/get-v1-conversation-export.md"""

    cursor_field = "updated_at"
    after_param = "updated_after"
    before_param = "updated_before"


class MessageExport(DixaExportStream):
    """GET /v1/message_export: https://docs.dixa.io/openapi/exports-api/get-v1-message-export.md"""

    # Messages carry no updated_at; created_* is the only documented filter (dixa-exports-api.md §1, §5b).
    cursor_field = "created_at"
    after_param = "created_after"
    before_param = "created_before"


class _PeekingReader:
    """A file-like view of the raw body that remembers its first non-blank byte."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.first_byte: Optional[bytes] = None

    def read(self, size: int = -1) -> bytes:
        chunk: bytes = self._raw.read(size)
        if self.first_byte is None:
            stripped = chunk.lstrip()
            if stripped:
                self.first_byte = stripped[:1]
        return chunk


def parse_state_value(value: Any, stream_name: str, cursor_field: str) -> Optional[int]:
    """Accept int milliseconds, or the numeric strings and floats older Dixa connectors wrote."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise config_error(
        f"The saved state of {stream_name} has {cursor_field}={value!r}, not Unix milliseconds; "
        "reset the stream or fix the state."
    )


def _as_ms(value: Any, cursor: str) -> int:
    """A cursor that ijson parsed as a float (1.7e12, 1700000000000.0) is fine if it is a whole number."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise InvalidResponse(f"a record's '{cursor}' is {value!r}, not Unix milliseconds.")


def _id_of(record: Any) -> Any:
    return record.get("id") if isinstance(record, dict) else None
