"""The Dixa API (dev.dixa.io): list endpoints read page by page, one time-windowed incremental stream, data-only leaves.

Facts and their sources are in ../shared/docs/dixa-api.md ("§" below).
"""

from __future__ import annotations

import time
from abc import ABC
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from datetime import timedelta
from typing import Any, ClassVar, Optional
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import orjson
import requests
from airbyte_cdk.models import FailureType, SyncMode
from airbyte_cdk.sources.streams.http.error_handlers import ErrorHandler
from airbyte_cdk.sources.streams.http.requests_native_auth import TokenAuthenticator
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from typing_extensions import override

from source_dixa.config import config_error
from source_dixa.errors import DIXA_API_ERROR_MAPPING, DixaErrorHandler
from source_dixa.http_common import (
    PacedStream,
    is_rate_limited,
    is_unreachable,
    short,
    wall_clock_ms,
)
from source_dixa.pacing import AdaptivePacer
from source_dixa.timestamps import iso_to_ms, ms_to_dixa_param, normalize_iso
from source_dixa.windows import (
    DAY_MS,
    Window,
    contiguous_end_ms,
    ms_to_iso,
    next_span_ms,
    next_window,
    query_bounds,
)

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0
# The most records we ask for a page. Dixa's maximum is UNCONFIRMED; tap-dixa asks the activity log for 10,000
# (§3), and a server that returns fewer is followed through meta.next all the same.
PAGE_LIMIT = 1000
# Rounds of the CDK's retries one page gets (429s aside, which are waited out) before the stream fails.
PAGE_ATTEMPTS = 3
# Activity-log windows: start at a day, double while a window fits in one page, halve past BUSY_PAGES pages,
# so a quiet year is a few dozen requests and a killed sync loses at most about BUSY_PAGES pages of work.
FIRST_WINDOW_MS = DAY_MS
MIN_WINDOW_MS = 60 * 60 * 1000
MAX_WINDOW_MS = 31 * DAY_MS
BUSY_PAGES = 20


class UnusableBody(Exception):
    """A 200 whose body is not the JSON the endpoint documents."""


class RawTokenAuthenticator(TokenAuthenticator):
    """`Authorization: <token>` with no prefix: the Dixa API's security scheme (§1)."""

    def __init__(self, token: str) -> None:
        super().__init__(token=token, auth_method="")
        self._raw_token = token

    @property
    @override
    def token(self) -> str:
        return self._raw_token


class DixaApiStream(PacedStream, ABC):
    """A Dixa API list: `{"data": [...], "meta": {"next": ...}}`, followed through `meta.next` until it is absent.

    Leaves set `endpoint` (under /v1/, `{parent_id}` for a member list) and, where they apply, the attributes below.
    """

    endpoint: ClassVar[str]
    # Only these endpoints take pageLimit/pageKey; the others answer everything at once (§3).
    paginated: ClassVar[bool] = False
    # /v1/agents/presence answers a bare JSON array, not the envelope (§3).
    bare_array: ClassVar[bool] = False
    params: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Timestamps Dixa writes with a zone-id suffix or no zone, emitted as plain ISO-8601 UTC (§4).
    timestamp_fields: ClassVar[tuple[str, ...]] = ()
    # Member lists: the parent stream whose ids fill `{parent_id}`, and the field that carries the id on each record.
    parent_stream: ClassVar[Optional[type[DixaApiStream]]] = None
    parent_key: ClassVar[str] = ""
    # Contact endpoints have no id: the first of these fields present becomes `endpoint` (§4).
    endpoint_from: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        dixa_api_url: str,
        authenticator: TokenAuthenticator,
        pacer: AdaptivePacer,
        max_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(authenticator=authenticator, pacer=pacer, max_retries=max_retries, sleep=sleep)
        self._api_url = dixa_api_url
        self._origin = _origin(dixa_api_url)
        self._parent: Optional[DixaApiStream] = None
        if self.parent_stream is not None:
            self._parent = self.parent_stream(
                dixa_api_url=dixa_api_url, authenticator=authenticator, pacer=pacer, max_retries=max_retries
            )

    @property
    @override
    def url_base(self) -> str:
        return f"{self._api_url}/"

    @property
    @override
    def is_resumable(self) -> bool:
        # A list is read whole on every sync. The CDK's resumable full refresh would keep reading until the state
        # holds its page token, and Dixa's pageKeys are opaque and may not outlive the sync (§3).
        return self.supports_incremental

    @override
    def path(
        self,
        *,
        stream_state: Optional[Mapping[str, Any]] = None,
        stream_slice: Optional[Mapping[str, Any]] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> str:
        if next_page_token:
            # Already resolved and checked against the configured host (_next_url).
            return str(next_page_token["url"])
        parent_id = quote(str((stream_slice or {}).get("parent_id", "")), safe="")
        return "v1/" + self.endpoint.replace("{parent_id}", parent_id)

    @override
    def next_page_token(self, response: requests.Response) -> Optional[Mapping[str, Any]]:
        # read_records follows meta.next itself, from the body it has already parsed.
        return None

    @override
    def parse_response(
        self,
        response: requests.Response,
        *,
        stream_state: Optional[Mapping[str, Any]] = None,
        stream_slice: Optional[Mapping[str, Any]] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Mapping[str, Any]]:
        records, _ = self._unwrap(_json_of(response))
        return [self._shape(record, stream_slice) for record in records]

    @override
    def request_params(
        self,
        stream_state: Optional[Mapping[str, Any]],
        stream_slice: Optional[Mapping[str, Any]] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> MutableMapping[str, Any]:
        if next_page_token:
            # The opaque pageKey carries the original filters: "do not try to construct or change" it (§3).
            return {}
        params: dict[str, Any] = dict(self.params)
        if self.paginated:
            params["pageLimit"] = PAGE_LIMIT
        return params

    @override
    def request_kwargs(
        self,
        stream_state: Optional[Mapping[str, Any]],
        stream_slice: Optional[Mapping[str, Any]] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Mapping[str, Any]:
        return {"timeout": (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)}

    @override
    def get_error_handler(self) -> Optional[ErrorHandler]:
        return DixaErrorHandler(
            self.logger,
            max_retries=self._max_retries,
            max_time=timedelta(hours=1),
            mapping=DIXA_API_ERROR_MAPPING,
            api_name="Dixa API",
            stream_name=self.name,
            missing_parent_ok=self.parent_stream is not None,
        )

    @override
    def stream_slices(
        self,
        *,
        sync_mode: SyncMode,
        cursor_field: Optional[list[str]] = None,
        stream_state: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Optional[Mapping[str, Any]]]:
        return self._slices(sync_mode)

    def _slices(self, sync_mode: SyncMode) -> Iterable[Optional[Mapping[str, Any]]]:
        if self._parent is None:
            # One slice; not None, which the CDK's slice readers take for "no more slices" (core.py).
            yield {}
            return
        for parent in self._parent.read_records(SyncMode.full_refresh, stream_slice=None):
            if parent.get("id") is not None:
                yield {"parent_id": parent["id"]}

    @override
    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: Optional[list[str]] = None,
        stream_slice: Optional[Mapping[str, Any]] = None,
        stream_state: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Mapping[str, Any]]:
        for page in self._pages(stream_slice):
            yield from page

    def _pages(self, stream_slice: Optional[Mapping[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """Every page of one list, each as its records, ready to emit."""
        token: Optional[Mapping[str, Any]] = None
        pages_read: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        # pageKeys are opaque, so a link back to a page can look new: a page whose records are exactly those of an
        # earlier page is that page again. One hash a page keeps memory flat however long the list.
        contents_read: set[int] = set()
        key_fields = _key_fields(self.primary_key)
        while True:
            page = self._fetch(stream_slice, token)
            if page is None:
                # Only member lists get here (errors.MISSING_PARENT): the parent went away after it was listed.
                parent_id = (stream_slice or {}).get("parent_id")
                self.logger.warning(f"{self.name}: {parent_id} was deleted during the sync (HTTP 404); skipped.")
                return
            url, records, next_link = page
            shaped = [self._shape(record, stream_slice) for record in records]
            contents = hash(tuple(tuple(record.get(field) for field in key_fields) for record in shaped))
            if shaped and contents in contents_read:
                raise self._loop_error(url)
            pages_read.add(_page_id(url))
            contents_read.add(contents)
            yield shaped
            if not next_link:
                return
            next_url = self._next_url(next_link)
            if _page_id(next_url) in pages_read:
                raise self._loop_error(next_url)
            token = {"url": next_url}

    def _loop_error(self, url: str) -> AirbyteTracedException:
        return _failure(
            f"The Dixa API sent {self.name} a next-page link to a page it had already read ({_endpoint_of(url)}); "
            "stopping instead of reading it forever.",
            FailureType.system_error,
        )

    def _fetch(
        self, stream_slice: Optional[Mapping[str, Any]], token: Optional[Mapping[str, Any]]
    ) -> Optional[tuple[str, list[dict[str, Any]], Optional[str]]]:
        """One page's URL, records and next link, with the CDK's retries, a 429 waited out, an unusable 200 asked again.

        None when a member list is gone (HTTP 404).
        """
        rounds = 0
        while True:
            try:
                request, response = self._fetch_next_page(stream_slice, None, token)
                if response.status_code == 404:
                    return None
                return (request.url or "", *self._unwrap(_json_of(response)))
            except AirbyteTracedException as error:
                if is_rate_limited(error):
                    self.logger.info(f"{self.name}: still rate limited; waiting on.")
                    continue
                rounds += 1
                if error.failure_type != FailureType.transient_error or is_unreachable(error):
                    raise
                if rounds >= PAGE_ATTEMPTS:
                    raise _failure(
                        f"The Dixa API kept failing on {self.name} ({self._endpoint_name(token)}): {short(error)}",
                        FailureType.transient_error,
                    ) from None
                problem = short(error)
            except UnusableBody as error:
                rounds += 1
                if rounds >= PAGE_ATTEMPTS:
                    raise _failure(
                        f"The Dixa API's answer for {self.name} ({self._endpoint_name(token)}) was not usable: {error}",
                        FailureType.system_error,
                    ) from None
                problem = f"Its answer was not usable: {error}"
            wait_s = self._backoff.fallback_s(rounds)
            self.logger.warning(f"{self.name}: {problem} Asking again in {wait_s:.1f} s.")
            self._sleep(wait_s)

    def _unwrap(self, body: Any) -> tuple[list[dict[str, Any]], Optional[str]]:
        if self.bare_array:
            if not isinstance(body, list):
                raise UnusableBody(f"expected a JSON array, got {_shape_of(body)}.")
            return _objects(body), None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise UnusableBody('expected {"data": [...]}, got ' + _shape_of(body) + ".")
        meta = body.get("meta")
        next_link = meta.get("next") if isinstance(meta, dict) else None
        if next_link is not None and not isinstance(next_link, str):
            raise UnusableBody(f"meta.next is {type(next_link).__name__}, not a link.")
        return _objects(data), next_link or None

    def _shape(self, record: dict[str, Any], stream_slice: Optional[Mapping[str, Any]]) -> dict[str, Any]:
        for field in self.timestamp_fields:
            if field in record:
                record[field] = normalize_iso(record[field])
        if self.parent_key:
            record[self.parent_key] = (stream_slice or {}).get("parent_id")
        if self.endpoint_from:
            record["endpoint"] = next((record[f] for f in self.endpoint_from if record.get(f) is not None), None)
        return record

    def _next_url(self, next_link: str) -> str:
        """meta.next resolved against the configured host; any other host or scheme is refused before a request."""
        url = urljoin(self.url_base, next_link)
        if _origin(url) != self._origin:
            raise _failure(
                f"The Dixa API sent {self.name} a next-page link to {_origin_text(url)}, not "
                f"{_origin_text(self._api_url)}; refusing to send the API token there.",
                FailureType.system_error,
            )
        return url

    def _endpoint_name(self, token: Optional[Mapping[str, Any]]) -> str:
        return _endpoint_of(str(token["url"])) if token else f"/v1/{self.endpoint}"

    def probe(self) -> int:
        """Read the first page only, with the CDK's retries: proves the token; counts the records."""
        _, response = self._fetch_next_page(None, None, None)
        records, _ = self._unwrap(_json_of(response))
        return len(records)


class DixaApiWindowedStream(DixaApiStream, ABC):
    """A Dixa API list filtered by time, read in half-open windows with one STATE checkpoint per window.

    Results come in no documented order and the bounds' inclusivity is UNCONFIRMED (§4), so a window is only
    complete after its last page; each window asks one millisecond wider and keeps `start <= t < end`.
    """

    cursor_field: ClassVar[str]
    from_param: ClassVar[str]
    to_param: ClassVar[str]

    def __init__(
        self,
        *,
        start_ms: int,
        safety_lag_ms: int = 0,
        now_ms: Callable[[], int] = wall_clock_ms,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._start_ms = start_ms
        self._safety_lag_ms = safety_lag_ms
        self._now_ms = now_ms
        self._state: MutableMapping[str, Any] = {}
        self._state_ms: Optional[int] = None
        self._span_ms = FIRST_WINDOW_MS
        self._window_pages = 0
        self._contiguous_ms = 0

    @property
    @override
    def state(self) -> MutableMapping[str, Any]:
        return self._state

    @state.setter
    @override
    def state(self, value: MutableMapping[str, Any]) -> None:
        raw = (value or {}).get(self.cursor_field)
        if raw is None:
            self._state, self._state_ms = {}, None
            return
        state_ms = iso_to_ms(raw) if isinstance(raw, str) else None
        if state_ms is None:
            raise config_error(
                f"The saved state of {self.name} has {self.cursor_field}={raw!r}, not an ISO-8601 UTC time; "
                "reset the stream or fix the state."
            )
        self._state, self._state_ms = {self.cursor_field: ms_to_iso(state_ms)}, state_ms

    @override
    def request_params(
        self,
        stream_state: Optional[Mapping[str, Any]],
        stream_slice: Optional[Mapping[str, Any]] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> MutableMapping[str, Any]:
        params = super().request_params(stream_state, stream_slice, next_page_token)
        if not next_page_token:
            from_ms, to_ms = query_bounds(Window.of_slice(stream_slice))
            params.update({self.from_param: ms_to_dixa_param(from_ms), self.to_param: ms_to_dixa_param(to_ms)})
        return params

    @override
    def _slices(self, sync_mode: SyncMode) -> Iterable[Optional[Mapping[str, Any]]]:
        start_ms = self._start_ms
        if sync_mode == SyncMode.incremental and self._state_ms is not None:
            start_ms = max(start_ms, self._state_ms)
        # Windows end a safety lag before now: what Dixa shows that late is still read (README, "Safety lag").
        end_ms = self._now_ms() - self._safety_lag_ms
        self._contiguous_ms = start_ms
        if start_ms >= end_ms:
            self.logger.info(f"{self.name}: nothing to read, already up to date at {ms_to_iso(start_ms)}.")
            return
        cursor_ms = start_ms
        while cursor_ms < end_ms:
            window = next_window(cursor_ms, end_ms, self._span_ms)
            yield window.as_slice()
            cursor_ms = window.end_ms
            self._span_ms = next_span_ms(self._span_ms, self._window_pages, MIN_WINDOW_MS, MAX_WINDOW_MS, BUSY_PAGES)

    @override
    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: Optional[list[str]] = None,
        stream_slice: Optional[Mapping[str, Any]] = None,
        stream_state: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Mapping[str, Any]]:
        window = Window.of_slice(stream_slice)
        start_ms, end_ms, cursor = window.start_ms, window.end_ms, self.cursor_field
        started_s = time.monotonic()
        seen: set[Any] = set()
        self._window_pages = 0
        for page in self._pages(stream_slice):
            self._window_pages += 1
            for record in page:
                t_ms = _cursor_ms(record, cursor, self.name)
                if not start_ms <= t_ms < end_ms:
                    continue
                record_id = record.get("id")
                if record_id is not None:
                    if record_id in seen:
                        continue
                    seen.add(record_id)
                yield record
        # Only now is every record of the window emitted; the CDK checkpoints right after this slice.
        contiguous_ms = contiguous_end_ms(self._contiguous_ms, window)
        if contiguous_ms is not None:
            self._contiguous_ms = contiguous_ms
            if self._state_ms is None or contiguous_ms > self._state_ms:
                self._state_ms = contiguous_ms
                self._state = {cursor: ms_to_iso(contiguous_ms)}
        self.logger.info(
            f"{self.name}: window {window.describe()} done, {len(seen)} records in {self._window_pages} "
            f"{'page' if self._window_pages == 1 else 'pages'}, {time.monotonic() - started_s:.1f} s."
        )


def _json_of(response: requests.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as error:
        content_type = response.headers.get("Content-Type", "none")
        raise UnusableBody(f"the body is not JSON (Content-Type '{content_type}': {error}).") from None


def _objects(items: list[Any]) -> list[dict[str, Any]]:
    for item in items:
        if not isinstance(item, dict):
            raise UnusableBody(f"a record is {type(item).__name__}, not an object.")
    return items


def _cursor_ms(record: Mapping[str, Any], cursor: str, stream_name: str) -> int:
    value = record.get(cursor)
    t_ms = iso_to_ms(value) if isinstance(value, str) else None
    if t_ms is None:
        # Without its time a record cannot be placed in a window; skipping it would lose it silently.
        raise _failure(
            f"The Dixa API sent a {stream_name} record whose '{cursor}' is {str(value)[:60]!r}, not an ISO-8601 "
            f"time (id {record.get('id')}).",
            FailureType.system_error,
        )
    return t_ms


def _origin(url: str) -> tuple[str, str, Optional[int]]:
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port


def _origin_text(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _endpoint_of(url: str) -> str:
    return urlsplit(url).path or url


def _key_fields(primary_key: Any) -> list[str]:
    return [primary_key] if isinstance(primary_key, str) else list(primary_key or [])


def _page_id(url: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A page as its path and sorted query: the same page however its parameters are ordered."""
    parts = urlsplit(url)
    return parts.path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))


def _shape_of(body: Any) -> str:
    if isinstance(body, dict):
        return "an object with keys " + ", ".join(sorted(map(str, body))[:5])
    return type(body).__name__


def _failure(message: str, failure_type: FailureType) -> AirbyteTracedException:
    return AirbyteTracedException(message=message, internal_message=message, failure_type=failure_type)
