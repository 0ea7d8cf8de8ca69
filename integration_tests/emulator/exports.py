"""The Exports API (`GET /v1/conversation_export`, `GET /v1/message_export`), written from dixa-exports-api.md.

It enforces the documented request rules (Bearer or legacy Basic auth, `_after`/`_before` pairs, the 31-day span,
400/401 with empty bodies) and lets tests switch the undocumented parts (bound inclusiveness, rate limit).
"""

from __future__ import annotations

import bisect
import json
import random
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from .common import DAY_MS, drop_field, dumps
from .common import uuid4 as _uuid
from .config import EmulatorConfig
from .exports_data import Generator, Pools, special_times
from .faults import SPAN_FAULT, format_retry_after
from .limits import SlidingWindow
from .server import Exchange, Handler, Headers, exports_auth_ok

CONVERSATION_PATH = "/v1/conversation_export"
MESSAGE_PATH = "/v1/message_export"

# Filters each endpoint understands: the cursor field first (served via bisect), then the others.
# conversation_export documents updated_*, created_* and closed_*; message_export only created_* (research §1).
_ENDPOINT_FILTERS: dict[str, tuple[str, ...]] = {
    CONVERSATION_PATH: ("updated_at", "created_at", "closed_at"),
    MESSAGE_PATH: ("created_at",),
}
# Documented (or, for messages, unconfirmed) parameters that the emulator does not implement. They get a 400
# instead of being silently ignored, so a client relying on them notices (research §1).
_UNEMULATED_PARAMS: dict[str, frozenset[str]] = {
    CONVERSATION_PATH: frozenset({"csids", "last_message_created_after", "last_message_created_before"}),
    MESSAGE_PATH: frozenset(
        {"csids", "updated_after", "updated_before", "closed_after", "closed_before"}
        | {"last_message_created_after", "last_message_created_before"}
    ),
}

# "Unix timestamp in milliseconds ... or LocalTime format (yyyy-mm-dd)" (research §1). ASCII digits only.
_MS_RE = re.compile(r"[0-9]{1,16}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Bound:
    """One `<field>_after` / `<field>_before` filter with the server's current inclusiveness."""

    field: str
    after_ms: int | None
    before_ms: int | None
    after_inclusive: bool
    before_inclusive: bool

    def accepts(self, value: int | None) -> bool:
        if value is None:
            return False
        if self.after_ms is not None and (
            value < self.after_ms or (value == self.after_ms and not self.after_inclusive)
        ):
            return False
        return not (
            self.before_ms is not None
            and (value > self.before_ms or (value == self.before_ms and not self.before_inclusive))
        )


# Record ids: int for conversations, str (uuid) for messages.
_K = TypeVar("_K", int, str)
_Row = tuple[int, _K, bytes, tuple[int | None, ...]]  # (cursor_ms, id, JSON bytes, non-cursor filter values)


class Table(Generic[_K]):
    """Records of one endpoint, sorted by `(cursor, id)` and stored only as their JSON bytes.

    Keeping bytes (not dicts) keeps a 100k-record account close to its serialised size in memory, makes serving a
    range a list slice, and makes every read of the ground truth a fresh copy (`json.loads`).
    """

    def __init__(self, cursor_field: str, meta_fields: tuple[str, ...]) -> None:
        self.cursor_field = cursor_field
        self.meta_fields = meta_fields
        self._keys: list[tuple[int, _K]] = []  # sorted (cursor_ms, id)
        self._payloads: list[bytes] = []  # parallel to _keys
        self._cursor_by_id: dict[_K, int] = {}
        # Values of the non-cursor filter fields, so created_*/closed_* filters need no JSON decoding.
        self._meta: dict[_K, tuple[int | None, ...]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def bulk_load(self, rows: list[_Row[_K]]) -> None:
        rows.sort(key=lambda row: (row[0], row[1]))
        self._keys = [(cursor, key) for cursor, key, _, _ in rows]
        self._payloads = [payload for _, _, payload, _ in rows]
        self._cursor_by_id = {key: cursor for cursor, key, _, _ in rows}
        self._meta = {key: meta for _, key, _, meta in rows}

    def put(self, record: dict[str, Any]) -> None:
        """Insert or replace one record, re-serialising it and moving it to its new sorted position."""
        key = record["id"]
        cursor = record[self.cursor_field]
        old_cursor = self._cursor_by_id.get(key)
        if old_cursor is not None:
            index = bisect.bisect_left(self._keys, (old_cursor, key))
            del self._keys[index]
            del self._payloads[index]
        index = bisect.bisect_left(self._keys, (cursor, key))
        self._keys.insert(index, (cursor, key))
        self._payloads.insert(index, dumps(record))
        self._cursor_by_id[key] = cursor
        self._meta[key] = tuple(record.get(name) for name in self.meta_fields)

    def get(self, key: _K) -> dict[str, Any]:
        cursor = self._cursor_by_id[key]
        index = bisect.bisect_left(self._keys, (cursor, key))
        record: dict[str, Any] = json.loads(self._payloads[index])
        return record

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for payload in self._payloads]

    def keys_between(self, start_ms: int, end_ms: int) -> list[_K]:
        """Ids whose cursor lies in the half-open range `[start_ms, end_ms)`."""
        lo = bisect.bisect_left(self._keys, (start_ms,))
        hi = bisect.bisect_left(self._keys, (end_ms,))
        return [key for _, key in self._keys[lo:hi]]

    def select(self, bounds: Sequence[Bound]) -> list[bytes]:
        """Payloads matching every bound, in cursor order. The cursor bound is a bisect; others scan the range."""
        lo, hi = 0, len(self._keys)
        others: list[tuple[int, Bound]] = []
        for bound in bounds:
            if bound.field != self.cursor_field:
                others.append((self.meta_fields.index(bound.field), bound))
                continue
            # (t,) sorts before every (t, id), so bisecting on (t,) / (t + 1,) finds the first cursor >= t / > t.
            if bound.after_ms is not None:
                first = bound.after_ms if bound.after_inclusive else bound.after_ms + 1
                lo = max(lo, bisect.bisect_left(self._keys, (first,)))
            if bound.before_ms is not None:
                stop = bound.before_ms + 1 if bound.before_inclusive else bound.before_ms
                hi = min(hi, bisect.bisect_left(self._keys, (stop,)))
        if lo >= hi:
            return []
        if not others:
            return self._payloads[lo:hi]
        return [
            self._payloads[index]
            for index in range(lo, hi)
            if all(bound.accepts(self._meta[self._keys[index][1]][slot]) for slot, bound in others)
        ]

    def ids(self) -> Iterable[_K]:
        return self._cursor_by_id.keys()

    def __contains__(self, key: object) -> bool:
        return key in self._cursor_by_id

    def first_payload(self) -> bytes | None:
        return self._payloads[0] if self._payloads else None

    def first_record(self) -> dict[str, Any] | None:
        payload = self.first_payload()
        return json.loads(payload) if payload is not None else None


class ExportsApi:
    """Both Exports endpoints over one generated account. Callers hold `lock` for everything but `serve`."""

    name = "exports"

    def __init__(self, config: EmulatorConfig, lock: Any) -> None:
        if config.conversations < 0 or config.messages_per_conversation < 0:
            raise ValueError("conversations and messages_per_conversation must not be negative")
        self._lock = lock
        self._limiter = SlidingWindow()
        self.conversations: Table[int] = Table("updated_at", ("created_at", "closed_at"))
        self.messages: Table[str] = Table("created_at", ())
        rng = random.Random(config.seed)
        self.pools = Pools.build(rng)
        self._generator = Generator(self.pools, config.messages_per_conversation)
        # Changes made after construction draw from their own stream, so the initial data never depends on them.
        self._mutation_rng = random.Random(f"dixa-emulator-mutations-{config.seed}")
        self._generate(rng, config)

    # ---- the request pipeline (see DixaEmulator._handle) ----------------------------------------------------------

    @staticmethod
    def owns(path: str) -> bool:
        return path in _ENDPOINT_FILTERS

    @staticmethod
    def template(path: str) -> str:
        return path

    @staticmethod
    def auth_ok(header: str | None, config: EmulatorConfig) -> bool:
        return exports_auth_ok(header, config.token)

    def admit(self, config: EmulatorConfig, now: float) -> bool:
        return self._limiter.admit(config.rate_limit, config.rate_window_s, now)

    def retry_after(self, config: EmulatorConfig, now: float) -> list[tuple[str, str]]:
        if config.retry_after_s is None:
            return []
        if config.retry_after_s == 0:
            wait_s = self._limiter.wait_s(config.rate_limit, config.rate_window_s, now)
        else:
            wait_s = config.retry_after_s
        return [("Retry-After", format_retry_after(wait_s, config.retry_after_fractional))]

    @staticmethod
    def send_error(handler: Handler, status: int, headers: Headers = ()) -> None:
        # "400 Invalid query parameters", "401 Invalid or missing credentials": no body (research §4).
        handler.send_empty(status, headers)

    def serve(self, exchange: Exchange, config: EmulatorConfig, fault: str | None) -> None:
        """A 200 array for a valid query (distorted by a body fault), else the documented empty 400."""
        path, handler = exchange.path, exchange.handler
        query = _parse_query(path, exchange.params, config)
        if query is None:
            exchange.log(400, fault)  # "400 Invalid query parameters", no body (research §4)
            handler.send_empty(400)
            return
        bounds, span_ms = query
        if config.fail_span_over_ms is not None and span_ms > config.fail_span_over_ms:
            exchange.log(504, SPAN_FAULT)
            handler.send_empty(504)
            return
        table = self.conversations if path == CONVERSATION_PATH else self.messages
        if config.visibility_delay_s > 0:
            cutoff_ms = int(time.time() * 1000 - config.visibility_delay_s * 1000)
            bounds.append(Bound(table.cursor_field, None, cutoff_ms, True, True))
        with self._lock:
            payloads = table.select(bounds)
            fallback = table.first_payload()
        if fault == "missing_cursor":
            payloads = drop_field(list(payloads), fallback, table.cursor_field)
        content_type = "text/plain" if fault == "wrong_content_type" else "application/json"
        exchange.log(200, fault)
        handler.send_array(payloads, content_type, truncate=fault == "truncate")

    # ---- ground truth --------------------------------------------------------------------------------------------

    def conversation_records(self) -> list[dict[str, Any]]:
        with self._lock:
            records = self.conversations.records()
        return sorted(records, key=lambda record: int(record["id"]))

    def message_records(self) -> list[dict[str, Any]]:
        with self._lock:
            return self.messages.records()

    # ---- changing data between syncs -----------------------------------------------------------------------------

    def update_conversations(self, ids: Iterable[int], updated_at_ms: int) -> None:
        with self._lock:
            records = [self.conversations.get(conversation_id) for conversation_id in ids]
            for record in records:
                if updated_at_ms < record["updated_at"]:
                    raise ValueError(
                        f"conversation {record['id']}: updated_at may only move forward "
                        f"({updated_at_ms} < {record['updated_at']})"
                    )
            for record in records:
                record["updated_at"] = updated_at_ms
                record["status"] = "closed"
                record["closed_at"] = updated_at_ms
                extra = record.get("emulator_extra_field")
                if isinstance(extra, dict):
                    extra["revision"] = int(extra.get("revision", 0)) + 1
                self.conversations.put(record)

    def reply_to_conversations(self, ids: Iterable[int], at_ms: int) -> list[str]:
        ids = list(ids)
        self.update_conversations(ids, at_ms)
        with self._lock:
            template = self.messages.first_record()
            if template is None:
                return []
            new_ids: list[str] = []
            for conversation_id in ids:
                message = dict(template)
                message.update(
                    id=_uuid(self._mutation_rng),
                    csid=conversation_id,
                    created_at=at_ms,
                    direction="outbound",
                    text=f'Following up on #{conversation_id} — «done» "quoted"\nthanks',
                )
                self.messages.put(message)
                new_ids.append(message["id"])
            return new_ids

    def add_conversations(self, count: int, updated_at_ms: int) -> list[int]:
        with self._lock:
            rng = self._mutation_rng
            next_id = max(self.conversations.ids(), default=999) + 1
            new_ids: list[int] = []
            for conversation_id in range(next_id, next_id + count):
                created_ms = updated_at_ms - self._generator.lifetime_ms(rng)
                record, messages = self._generator.conversation(
                    rng, conversation_id, created_ms, updated_at_ms, self._generator.message_count(rng), False
                )
                self.conversations.put(record)
                for message in messages:
                    self.messages.put(message)
                new_ids.append(conversation_id)
            return new_ids

    # ---- internals -----------------------------------------------------------------------------------------------

    def _generate(self, rng: random.Random, config: EmulatorConfig) -> None:
        count = config.conversations
        generator = self._generator
        span_ms = config.end_ms - config.start_ms
        updated = [config.start_ms + int(rng.random() * span_ms) for _ in range(count)]
        lifetimes = [generator.lifetime_ms(rng) for _ in range(count)]
        pinned = special_times(rng, count, config.start_ms, config.end_ms)
        for index, updated_ms in pinned.items():
            updated[index] = updated_ms
        # Ids grow with creation time, as they do in a real account.
        order = sorted(range(count), key=lambda index: (updated[index] - lifetimes[index], index))
        conversation_rows: list[_Row[int]] = []
        message_rows: list[_Row[str]] = []
        for rank, index in enumerate(order):
            updated_ms = updated[index]
            n_messages = generator.message_count(rng)
            if index in pinned:
                n_messages = max(1, n_messages)  # so a message lands on the special timestamp too
            record, messages = generator.conversation(
                rng, 1000 + rank, updated_ms - lifetimes[index], updated_ms, n_messages, index in pinned
            )
            conversation_rows.append(
                (updated_ms, record["id"], dumps(record), (record["created_at"], record["closed_at"]))
            )
            for message in messages:
                message_rows.append((message["created_at"], message["id"], dumps(message), ()))
        self.conversations.bulk_load(conversation_rows)
        self.messages.bulk_load(message_rows)


def _parse_query(path: str, params: dict[str, str], config: EmulatorConfig) -> tuple[list[Bound], int] | None:
    """The filters of a valid query and its span in ms, or None for a 400 (documented rules, research §1)."""
    if _UNEMULATED_PARAMS[path] & params.keys():
        return None
    bounds: list[Bound] = []
    for field in _ENDPOINT_FILTERS[path]:
        prefix = field.removesuffix("_at")
        raw_after, raw_before = params.get(f"{prefix}_after"), params.get(f"{prefix}_before")
        if raw_after is None and raw_before is None:
            continue
        after_ms = _parse_time(raw_after) if raw_after is not None else None
        before_ms = _parse_time(raw_before) if raw_before is not None else None
        if (raw_after is not None and after_ms is None) or (raw_before is not None and before_ms is None):
            return None
        if after_ms is not None and before_ms is not None and after_ms > before_ms:
            return None
        bounds.append(Bound(field, after_ms, before_ms, config.after_inclusive, config.before_inclusive))
    afters = [bound.after_ms for bound in bounds if bound.after_ms is not None]
    befores = [bound.before_ms for bound in bounds if bound.before_ms is not None]
    # "the request must have at least one _after and one _before parameter" and "no query can span more than
    # 1 month (31 days)". Across different fields the widest combination counts.
    if not afters or not befores:
        return None
    span_ms = max(befores) - min(afters)
    if span_ms > config.max_span_ms:
        return None
    return bounds, span_ms


def _parse_time(value: str) -> int | None:
    """Unix ms or `yyyy-mm-dd` (taken as UTC midnight; the API's timezone is unconfirmed, research §1)."""
    if _MS_RE.fullmatch(value):
        return int(value)
    if _DATE_RE.fullmatch(value):
        try:
            return (date.fromisoformat(value) - _EPOCH).days * DAY_MS
        except ValueError:
            return None
    return None
