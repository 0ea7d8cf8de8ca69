"""Local emulator of the Dixa Exports API: `GET /v1/conversation_export` and `GET /v1/message_export`.

Our own code, written from the research notes in `../shared/docs/dixa-exports-api.md` ("research" below).
It serves deterministic, seeded data that looks like a real account, enforces the documented request rules
(auth, `_after`/`_before` pairs, the 31-day span, 400/401 with empty bodies) and lets tests switch the
undocumented parts (bound inclusiveness, rate limit, Retry-After) and inject faults.

It binds to loopback only and uses nothing outside the standard library, so it also runs as a script:

    python integration_tests/emulator.py --conversations 1000

prints one JSON line `{"url": ..., "token": ..., "conversations": N, "messages": M}` and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import contextlib
import hmac
import ipaddress
import json
import math
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
CONVERSATION_PATH = "/v1/conversation_export"
MESSAGE_PATH = "/v1/message_export"

# Every fault `inject()` accepts; `EmulatorConfig.fault_kinds` draws from the same names.
FAULT_KINDS: tuple[str, ...] = (
    "500",
    "502",
    "503",
    "504",
    "429",
    "401",
    "400",
    "reset",
    "truncate",
    "slow",
    "not_json",
    "json_object",
    "missing_cursor",
    "wrong_content_type",
)
# Faults answered with a bare status and an empty body, like the documented 400/401 (research §4).
_STATUS_FAULTS = frozenset({"500", "502", "503", "504", "429", "401", "400"})
# Faults that need a valid query because they distort an otherwise normal 200 array.
_BODY_FAULTS = frozenset({"truncate", "missing_cursor", "wrong_content_type"})

# Log markers for responses that are not caused by an injected/random fault.
RATE_LIMIT_FAULT = "rate_limit"
SPAN_FAULT = "span"

# Large bodies go out in pieces of about this size: big enough for few syscalls, small enough
# that serving 100k records never builds the whole ~200 MB body in memory.
_WRITE_CHUNK_BYTES = 256 * 1024
# A GET body is never expected; drain at most this much so a keep-alive stream stays in sync.
_MAX_DRAIN_BYTES = 1 << 20

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

# One encoder for every record: compact, and raw UTF-8 (not \u escapes) so clients must decode properly.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dumps(record: dict[str, Any]) -> bytes:
    return _ENCODER.encode(record).encode("utf-8")


@dataclass
class EmulatorConfig:
    """Emulator settings.

    `seed`, `conversations`, `messages_per_conversation`, `start_ms` and `end_ms` shape the data and are read once,
    when `DixaEmulator` is constructed. Everything else is read on every request, so tests may change it at runtime.

    Retry-After on 429 responses (both rate-limit 429s and injected "429" faults):
    - `retry_after_s=None`: no header (nothing documents one; research §3).
    - `retry_after_s=0`: dynamic, the seconds until a rate-limit slot frees up (1 if one is free already).
    - `retry_after_s>0`: that fixed value.
    The value is sent as whole seconds rounded up, minimum 1, unless `retry_after_fractional` is set; then it is
    sent with up to 3 decimals (minimum 0.001), which lets tests keep retries in the millisecond range.
    """

    token: str = "emulator-token"
    seed: int = 7
    conversations: int = 500
    messages_per_conversation: float = 3.0
    start_ms: int = 1704067200000  # 2024-01-01T00:00:00Z
    end_ms: int = 1735689600000  # 2025-01-01T00:00:00Z
    after_inclusive: bool = False
    before_inclusive: bool = False
    max_span_ms: int = 31 * DAY_MS
    rate_limit: int | None = None
    rate_window_s: float = 60.0
    retry_after_s: float | None = None
    retry_after_fractional: bool = False
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ("500", "503", "429", "reset", "truncate", "slow")
    fault_seed: int = 1
    slow_s: float = 2.0
    fail_span_over_ms: int | None = None


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it.

    `status` is 0 when the connection was reset before any response. `fault` is the injected or random fault kind,
    `"rate_limit"` for a 429 from the rate limiter, `"span"` for a 504 from `fail_span_over_ms`, else None.
    """

    time_s: float
    path: str
    params: dict[str, str]
    status: int
    fault: str | None
    auth_ok: bool


# ------------------------------------------------------------------------------------------------------------------
# Storage
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bound:
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


class _Table(Generic[_K]):
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
        self._payloads.insert(index, _dumps(record))
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

    def select(self, bounds: Sequence[_Bound]) -> list[bytes]:
        """Payloads matching every bound, in cursor order. The cursor bound is a bisect; others scan the range."""
        lo, hi = 0, len(self._keys)
        others: list[tuple[int, _Bound]] = []
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

    def first_payload(self) -> bytes | None:
        return self._payloads[0] if self._payloads else None

    def first_record(self) -> dict[str, Any] | None:
        payload = self.first_payload()
        return json.loads(payload) if payload is not None else None


# ------------------------------------------------------------------------------------------------------------------
# Data generation
# ------------------------------------------------------------------------------------------------------------------

# Names with diacritics, CJK, Cyrillic, emoji, quotes and a backslash, so encoding bugs show. (display, email slug)
_PEOPLE: tuple[tuple[str, str], ...] = (
    ("Zoë Ødegård", "zoe.odegard"),
    ("Jürgen Müller", "juergen.mueller"),
    ("Siobhán O'Connor", "siobhan.oconnor"),
    ('Ana-María "Ani" Pérez', "ana.perez"),
    ("山田 太郎", "taro.yamada"),
    ("Łukasz Żółć", "lukasz.zolc"),
    ("Nguyễn Văn An", "an.nguyen"),
    ("Ольга Ковалёва", "olga.kovaleva"),
    ("Aïcha Benali", "aicha.benali"),
    ("Chloé Dubois", "chloe.dubois"),
    ("Mia 🌸 Sato", "mia.sato"),
    ("Back\\slash Bob", "bob.backslash"),
    ("Søren Kierkegård", "soren.k"),
    ("John Smith", "john.smith"),
)
_AGENT_NAMES: tuple[tuple[str, str], ...] = (
    ("Freja Nørgaard", "freja"),
    ("Mads Østergaard", "mads"),
    ("Emma Johansson", "emma"),
    ("Lucas Martin", "lucas"),
    ("Sofía García", "sofia"),
    ("Kenji 佐藤", "kenji"),
    ('Noah "Support" Olsen', "noah"),
    ("Ida Lindqvist", "ida"),
)
# The en dashes here and below are deliberate non-ASCII punctuation.
_QUEUE_NAMES = ("Support", "Billing 💳", 'VIP "Gold"', "Nordics – Øresund", "東京 Support", "Returns\\Exchanges")  # noqa: RUF001
_TAG_NAMES = ("vip", "refund", "shipping", "bug", "billing", "churn-risk", "😀 feedback", "legacy-tag")
_CHANNELS = ("email", "widgetchat", "pstnphone", "facebookmessenger", "whatsapp", "sms", "contactform")
_CHANNEL_WEIGHTS = (35, 25, 15, 7, 6, 5, 7)
_PHONE_CHANNELS = frozenset({"pstnphone", "sms", "whatsapp"})
_STATUSES = ("closed", "open", "pending")
_STATUS_WEIGHTS = (72, 16, 12)
_COUNTRIES = ("DK", "SE", "NO", "DE", "GB", "JP", "US", None)
_LANGUAGES = ("en", "da", "de", "ja", "sv", None)
_SUBJECTS = (
    "Order #{n} hasn't arrived",
    'Refund for "damaged" item #{n}',
    "File C:\\Users\\zoë\\invoice-{n}.pdf won't open",
    "Two-line subject\nsecond line #{n}",
    "Levering til 東京 📦 #{n}",
    "Billing question 💳",
    "Fwd: Re: RE: address change",
    "Tab\tseparated\tsubject",
)
_RATING_MESSAGES = (
    "Great help, thanks! 👍",
    'He said "we\'ll call back" but never did',
    "Line one\nLine two\n",
    "Attached C:\\temp\\log.txt as asked",
    "Très bien, merci",
    "とても良いサポートでした",
    "",
)
_WRAPUP_NOTES = (
    'Customer asked for a refund.\nApproved by "Team Lead".',
    "Logs in \\\\fileserver\\share\\case",
    "Escalated to tier 2 🚨",
    "Kunden ønskede opkald i morgen kl. 10",
)
_MESSAGE_TEXTS = (
    "Hi, my order #{n} hasn't arrived yet 📦",
    "Hej! Jeg har et spørgsmål om min faktura.",
    'Quote: "it\'s broken"\nPath: C:\\Users\\zoë\\Desktop',
    "<p>HTML body &amp; entities &lt;b&gt;</p>",
    "Thanks, that solved it 🙏",
    "ご対応ありがとうございます。",
    "Could you call me back on +45 12 34 56 78?",
    "",
)
_CHAT_MENU = ("Track my order", "Returns & refunds", "Talk to a human 🙋")
# (identifier, data_type, archived, kind): kind "text"/"select" give a string value, "multi" a list of strings.
_CUSTOM_ATTRIBUTES: tuple[tuple[str, str, bool, str], ...] = (
    ("order_number", "Text", False, "text"),
    ("product_category", "Select", False, "select"),
    ("affected_products", "MultiSelect", False, "multi"),
    ("legacy_reference", "Text", True, "text"),
)
_SELECT_OPTIONS = ("Shoes", "Bags", "Accessories", "Gift cards 🎁", "Ørestad outlet")


# Generation draws hundreds of values per conversation; these float-based helpers are several times faster than
# Random.choice/randint (which reject-sample on getrandbits) and still fully determined by the seed.
_T = TypeVar("_T")


def _pick(rng: random.Random, options: Sequence[_T]) -> _T:
    return options[int(rng.random() * len(options))]


def _randint(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID string from the seeded stream (same result as `str(uuid.UUID(int=..., version=4))`)."""
    value = rng.getrandbits(128)
    value = (value & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _phone(rng: random.Random) -> str:
    return f"+45{_randint(rng, 20_000_000, 99_999_999)}"


@dataclass(frozen=True)
class _Pools:
    """Account-level entities (agents, queues, tags, ...) shared by all conversations."""

    agents: tuple[tuple[str, str, str, str | None], ...]  # id, name, email, phone
    queues: tuple[tuple[str, str], ...]
    tags: tuple[tuple[str, str, bool], ...]  # id, name, is_deactivated
    attributes: tuple[tuple[str, str, str, bool, str], ...]  # attribute_id, identifier, data_type, archived, kind
    widgets: tuple[tuple[str, str], ...]
    email_integrations: tuple[tuple[str, str, str], ...]  # id, sender name, forwarding email
    facebook_pages: tuple[tuple[str, str], ...]
    numbers: tuple[tuple[str, str], ...]  # provisioned phone number id, name

    @classmethod
    def build(cls, rng: random.Random) -> _Pools:
        return cls(
            agents=tuple(
                (_uuid(rng), name, f"{slug}@support.acme.example", _phone(rng) if rng.random() < 0.6 else None)
                for name, slug in _AGENT_NAMES
            ),
            queues=tuple((_uuid(rng), name) for name in _QUEUE_NAMES),
            tags=tuple((_uuid(rng), name, name == "legacy-tag") for name in _TAG_NAMES),
            attributes=tuple((_uuid(rng), *attribute) for attribute in _CUSTOM_ATTRIBUTES),
            widgets=((_uuid(rng), "Main site widget"), (_uuid(rng), "Help centre – FAQ")),  # noqa: RUF001
            email_integrations=(
                (_uuid(rng), "Acme Support", "support@acme.example"),
                (_uuid(rng), "Acme Kundeservice Ø", "kundeservice@acme.example"),
            ),
            facebook_pages=(("104567890123456", "Acme Café"), ("209876543210987", "Acme 東京")),
            numbers=((_uuid(rng), "Main line +45 70 70 70 70"), (_uuid(rng), "Sverige växel")),
        )


class _Generator:
    """Builds one conversation and its messages from a random stream. Pure apart from the rng it is given."""

    def __init__(self, pools: _Pools, messages_per_conversation: float) -> None:
        self.pools = pools
        # Message counts are uniform on 0..2m (floor of U[0, 2m+1)), so their mean is m.
        self._message_scale = 2.0 * max(0.0, messages_per_conversation) + 1.0

    def message_count(self, rng: random.Random) -> int:
        return int(rng.random() * self._message_scale)

    @staticmethod
    def lifetime_ms(rng: random.Random) -> int:
        # Most conversations live minutes to hours; a tail stays open or is reopened for days or weeks.
        draw = rng.random()
        if draw < 0.6:
            return _randint(rng, 0, 8 * HOUR_MS)
        if draw < 0.9:
            return _randint(rng, 0, 5 * DAY_MS)
        return _randint(rng, 0, 30 * DAY_MS)

    def conversation(
        self,
        rng: random.Random,
        conversation_id: int,
        created_ms: int,
        updated_ms: int,
        n_messages: int,
        pin_last_message: bool,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One conversation with `created_ms <= every timestamp <= updated_ms` (except a scheduled rating)."""
        pools = self.pools
        span_ms = updated_ms - created_ms

        def at(fraction: float) -> int:
            return created_ms + int(span_ms * fraction)

        n = conversation_id
        channel = rng.choices(_CHANNELS, _CHANNEL_WEIGHTS)[0]
        is_phone = channel in _PHONE_CHANNELS
        direction = "outbound" if rng.random() < 0.12 else "inbound"
        status = rng.choices(_STATUSES, _STATUS_WEIGHTS)[0]
        name, slug = _pick(rng, _PEOPLE)
        requester = (_uuid(rng), name, f"{slug}{_randint(rng, 1, 999)}@example.com")
        queue = _pick(rng, pools.queues) if rng.random() < 0.85 else None
        queued_ms = at(rng.random() * 0.05) if direction == "inbound" and queue is not None else None
        agent = _pick(rng, pools.agents) if status == "closed" or rng.random() < 0.6 else None
        assigned_ms = at(0.05 + rng.random() * 0.2) if agent is not None else None
        if status == "closed":
            closed_ms: int | None = updated_ms if rng.random() < 0.5 else at(0.8 + rng.random() * 0.2)
        else:
            closed_ms = None
        anonymized_ms = updated_ms if rng.random() < 0.02 else None
        transferred = is_phone and agent is not None and rng.random() < 0.15
        transferee = _pick(rng, pools.agents) if transferred else None

        ratings, rating_score, rating_message = self._ratings(rng, closed_ms, updated_ms)
        tag_rows = rng.sample(pools.tags, _pick(rng, (0, 0, 1, 1, 2, 3)))
        number = _pick(rng, pools.numbers) if is_phone else None
        email_integration = _pick(rng, pools.email_integrations) if channel == "email" else None
        page = _pick(rng, pools.facebook_pages) if channel == "facebookmessenger" else None
        widget = _pick(rng, pools.widgets) if channel in ("widgetchat", "contactform") else None
        if status == "closed" and closed_ms is not None:
            total_s: int | None = _randint(rng, 30, 3600) if is_phone else (closed_ms - created_ms) // 1000
            handling_s: int | None = min(total_s, _randint(rng, 10, 1800)) if total_s is not None else None
        else:
            total_s = handling_s = None
        subject = None
        if channel in ("email", "contactform") or rng.random() < 0.1:
            subject = _pick(rng, _SUBJECTS).format(n=_randint(rng, 10_000, 99_999))

        messages, last_message_ms = self._messages(
            rng,
            conversation_id,
            channel,
            direction,
            created_ms,
            updated_ms,
            n_messages,
            pin_last_message,
            requester,
            agent,
            subject is not None,
        )
        anonymized = anonymized_ms is not None
        record: dict[str, Any] = {
            "id": conversation_id,
            "created_at": created_ms,
            "queued_at": queued_ms,
            "closed_at": closed_ms,
            "assigned_at": assigned_ms,
            "updated_at": updated_ms,
            "last_message_created_at": last_message_ms,
            "anonymized_at": anonymized_ms,
            "transfer_time": at(0.3 + rng.random() * 0.3) if transferred else None,
            "initial_channel": channel,
            "requester_id": requester[0],
            "requester_name": None if anonymized else requester[1],
            "requester_email": None if anonymized else requester[2],
            "requester_phone_number": _phone(rng) if (is_phone or rng.random() < 0.1) and not anonymized else None,
            "requester_additional_emails": [f"alt{n}@example.org"] if rng.random() < 0.1 else [],
            "requester_additional_phone_numbers": [_phone(rng)] if rng.random() < 0.05 else [],
            "queue_id": queue[0] if queue else None,
            "queue_name": queue[1] if queue else None,
            "rating_score": rating_score,
            "rating_message": rating_message,
            "ratings": ratings,
            "direction": direction,
            "assignee_id": agent[0] if agent else None,
            "assignee_name": agent[1] if agent else None,
            "assignee_email": agent[2] if agent else None,
            "assignee_phone_number": agent[3] if agent else None,
            "to_provisioned_phone_number_id": number[0] if number and direction == "inbound" else None,
            "to_provisioned_phone_number_name": number[1] if number and direction == "inbound" else None,
            "from_provisioned_phone_number_id": number[0] if number and direction == "outbound" else None,
            "from_provisioned_phone_number_name": number[1] if number and direction == "outbound" else None,
            "total_duration": total_s,
            "handling_duration": handling_s,
            "dixa_email_integration_id": email_integration[0] if email_integration else None,
            "dixa_email_integration_sender_name": email_integration[1] if email_integration else None,
            "forwarding_email": email_integration[2] if email_integration else None,
            "facebook_page_id": page[0] if page else None,
            "facebook_page_name": page[1] if page else None,
            "widget_id": widget[0] if widget else None,
            "widget_name": widget[1] if widget else None,
            "tags": [tag[1] for tag in tag_rows],
            "tags_info": [{"id": tag[0], "name": tag[1], "is_deactivated": tag[2]} for tag in tag_rows],
            "conversation_wrapup_notes": (
                rng.sample(_WRAPUP_NOTES, _randint(rng, 1, 2)) if agent and rng.random() < 0.2 else []
            ),
            "transferee_name": transferee[1] if transferee else None,
            "transferee_number": (transferee[3] or _phone(rng)) if transferee else None,
            "originating_country": _pick(rng, _COUNTRIES),
            "status": status,
            "subject": subject,
            "custom_fields": self._custom_fields(rng, n),
            # Not in the documented schema: connectors must pass unknown fields through (additionalProperties).
            "emulator_extra_field": {"revision": 0, "shard": n % 7, "note": "undocumented field"},
        }
        return record, messages

    @staticmethod
    def _ratings(
        rng: random.Random, closed_ms: int | None, updated_ms: int
    ) -> tuple[list[dict[str, Any]], int | None, str | None]:
        if closed_ms is None or rng.random() >= 0.35:
            return [], None, None
        status = rng.choices(("Rated", "Offered", "Scheduled", "Cancelled"), (60, 20, 10, 10))[0]
        offered_ms = closed_ms + (updated_ms - closed_ms) // 2
        score = _randint(rng, 1, 5) if status == "Rated" else None
        message = _pick(rng, _RATING_MESSAGES) if status == "Rated" and rng.random() < 0.5 else None
        rating = {
            "rating_score": score,
            "rating_message": message,
            "rating_type": _pick(rng, ("CSAT", "stars")),
            "rating_status": status,
            "rating_language": _pick(rng, _LANGUAGES),
            "rating_created_timestamp": closed_ms,
            "rating_offered_timestamp": offered_ms if status in ("Rated", "Offered") else None,
            "rating_modified_timestamp": updated_ms if status in ("Rated", "Cancelled") else closed_ms,
            "rating_rated_timestamp": updated_ms if status == "Rated" else None,
            "rating_scheduled_timestamp": closed_ms,
            # A scheduled survey may be due after the conversation's last update.
            "rating_scheduled_for_timestamp": closed_ms + HOUR_MS if status == "Scheduled" else offered_ms,
            "rating_unscheduled_timestamp": None,
            "rating_cancelled_timestamp": updated_ms if status == "Cancelled" else None,
        }
        return [rating], score, message

    def _custom_fields(self, rng: random.Random, n: int) -> list[dict[str, Any]]:
        fields: list[dict[str, Any]] = []
        for attribute_id, identifier, data_type, archived, kind in rng.sample(
            self.pools.attributes, _pick(rng, (0, 1, 2, 3))
        ):
            value: str | list[str] | None
            if rng.random() < 0.15:
                value = None
            elif kind == "multi":
                value = rng.sample(_SELECT_OPTIONS, _randint(rng, 0, 3))
            elif kind == "select":
                value = _pick(rng, _SELECT_OPTIONS)
            else:
                value = f"ORD-{n}-ø" if identifier == "order_number" else f'ref "{n}"\\old'
            fields.append(
                {
                    "attribute_id": attribute_id,
                    "identifier": identifier,
                    "value": value,
                    "data_type": data_type,
                    "archived": archived,
                }
            )
        return fields

    def _messages(
        self,
        rng: random.Random,
        conversation_id: int,
        channel: str,
        direction: str,
        created_ms: int,
        updated_ms: int,
        count: int,
        pin_last_message: bool,
        requester: tuple[str, str, str],
        agent: tuple[str, str, str, str | None] | None,
        is_email_like: bool,
    ) -> tuple[list[dict[str, Any]], int | None]:
        if count <= 0:
            return [], None
        span_ms = updated_ms - created_ms
        # The first message opens the conversation; the rest fall anywhere up to and including updated_at.
        times = sorted([created_ms] + [created_ms + int(span_ms * rng.random()) for _ in range(count - 1)])
        if pin_last_message:
            times[-1] = updated_ms
        is_phone = channel in _PHONE_CHANNELS
        messages: list[dict[str, Any]] = []
        for index, created_at in enumerate(times):
            message_direction = direction if index == 0 else _pick(rng, ("inbound", "outbound"))
            automated = message_direction == "outbound" and rng.random() < 0.25
            if message_direction == "inbound":
                author_name, author_email = requester[1], requester[2]
            elif automated or agent is None:
                author_name, author_email = "Acme Bot 🤖", None
            else:
                author_name, author_email = agent[1], agent[2]
            is_email = channel == "email"
            voice = channel == "pstnphone"
            message: dict[str, Any] = {
                "id": _uuid(rng),
                "csid": conversation_id,
                "created_at": created_at,
                "initial_channel": channel,
                "author_name": author_name,
                "author_email": author_email,
                "direction": message_direction,
                "text": None if voice else _pick(rng, _MESSAGE_TEXTS).format(n=conversation_id),
                "from_phone_number": _phone(rng) if is_phone else None,
                "to_phone_number": _phone(rng) if is_phone else None,
                "duration": _randint(rng, 5, 1800) if voice else None,
                "recording_url": f"https://recordings.acme.example/{conversation_id}/{index}.mp3"
                if voice and rng.random() < 0.7
                else None,
                "voicemail_url": f"https://voicemail.acme.example/{conversation_id}.wav"
                if voice and rng.random() < 0.1
                else None,
                "to": [requester[2] if message_direction == "outbound" else "support@acme.example"] if is_email else [],
                "cc": [f"cc{conversation_id}@example.net"] if is_email and rng.random() < 0.15 else [],
                "bcc": ["audit@acme.example"] if is_email and rng.random() < 0.05 else [],
                "attached_files": [f"https://files.acme.example/{conversation_id}/faktura%20Zo%C3%AB.pdf"]
                if is_email_like and rng.random() < 0.2
                else [],
                "from": (author_email or "noreply@acme.example") if is_email else None,
                "is_automated_message": automated,
                "chat_input_question": None,
                "chat_input_answer": None,
                "chat_menu_text": None,
                "form_submission": None,
                # Not in the documented schema.
                "emulator_extra_field": {"sentiment": _pick(rng, ("positive", "neutral", "negative", None))},
            }
            if channel == "widgetchat" and index == 0 and rng.random() < 0.5:
                message["chat_input_question"] = "What can we help you with?"
                message["chat_input_answer"] = _pick(rng, _CHAT_MENU)
                message["chat_menu_text"] = " | ".join(_CHAT_MENU)
            if channel == "contactform" and index == 0:
                message["form_submission"] = {
                    "name": requester[1],
                    "email": requester[2],
                    "phone": _phone(rng) if rng.random() < 0.4 else None,
                }
            messages.append(message)
        return messages, times[-1]


def _special_times(rng: random.Random, count: int, start_ms: int, end_ms: int) -> dict[int, int]:
    """Pick records to put exactly on day boundaries and on shared timestamps, so boundary bugs show.

    Returns {record index: updated_at}. The range start, when it is a day boundary, is always among them.
    """
    if count < 2:
        return {}
    first_day_ms = -(-start_ms // DAY_MS) * DAY_MS
    days = list(range(first_day_ms, end_ms, DAY_MS))
    n_boundary = min(6, max(1, count // 50)) if days else 0
    n_pairs = min(4, max(1, count // 100))
    tie_size = 3 if days and count >= 6 else 0
    wanted = min(count, n_boundary + tie_size + 2 * n_pairs)
    indices = rng.sample(range(count), wanted)
    pinned: dict[int, int] = {}
    cursor = 0
    if days:
        # The range start itself is a classic off-by-one trap, so it is always one of the boundary records.
        boundary_days = [days[0], *rng.sample(days, min(len(days), n_boundary - 1))] if n_boundary else []
        for day_ms in boundary_days:
            if cursor < wanted:
                pinned[indices[cursor]] = day_ms
                cursor += 1
        # Several records sharing one timestamp that is also a day boundary.
        tie_day_ms = _pick(rng, days)
        for _ in range(tie_size):
            if cursor < wanted:
                pinned[indices[cursor]] = tie_day_ms
                cursor += 1
    while cursor + 1 < wanted:
        shared_ms = rng.randrange(start_ms, end_ms)
        pinned[indices[cursor]] = shared_ms
        pinned[indices[cursor + 1]] = shared_ms
        cursor += 2
    return pinned


# ------------------------------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Threads serving idle keep-alive connections must not keep the process alive or block stop().
    block_on_close = False

    def __init__(self, address: tuple[str, int], emulator: DixaEmulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections so they exit promptly."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients keep connections alive; every response therefore carries a Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "dixa-emulator/1.0"
    server: _Server

    def version_string(self) -> str:
        # Just our name: the default appends the Python version, which is noise in captured headers.
        return self.server_version

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; with Nagle on, a keep-alive client's delayed ACK would
        # stall every response by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        # Silence the default per-request stderr line; tests assert on DixaEmulator.request_log instead.
        return

    def do_GET(self) -> None:
        self._drain_body()
        try:
            self.server.emulator._handle(self)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away mid-response (e.g. it gave up on a slow or huge body).
            self.close_connection = True

    def _not_allowed(self) -> None:
        # Only GET is supported (research §1).
        self._drain_body()
        self.send_empty(405, [("Allow", "GET")])

    do_POST = do_PUT = do_PATCH = do_DELETE = _not_allowed

    def _drain_body(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and 0 < int(length) <= _MAX_DRAIN_BYTES:
            self.rfile.read(int(length))
        elif length and length != "0":
            self.close_connection = True

    def send_empty(self, status: int, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_bytes(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_array(self, payloads: Sequence[bytes], content_type: str, truncate: bool = False) -> None:
        """Send `[p0,p1,...]` with its exact Content-Length, in chunks; `truncate` stops after half of it."""
        total = 2 + sum(map(len, payloads)) + max(0, len(payloads) - 1)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(total))
        self.end_headers()
        remaining = total // 2 if truncate else total
        for chunk in _iter_array_chunks(payloads):
            if len(chunk) >= remaining:
                self.wfile.write(chunk[:remaining])
                break
            self.wfile.write(chunk)
            remaining -= len(chunk)
        if truncate:
            # The promised Content-Length is never reached: closing now gives the client a short read.
            self.close_connection = True

    def reset(self) -> None:
        """Abort the connection with a TCP RST before any response (SO_LINGER with a zero timeout)."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # rfile holds a reference to the socket; the fd is only really closed (sending the RST) once it is gone.
        self.rfile.close()
        self.connection.close()


def _iter_array_chunks(payloads: Sequence[bytes]) -> Iterator[bytes]:
    """Yield the JSON array `[p0,p1,...]` in pieces of roughly `_WRITE_CHUNK_BYTES`."""
    yield b"["
    start = 0
    size = 0
    for index, payload in enumerate(payloads):
        size += len(payload) + 1
        if size >= _WRITE_CHUNK_BYTES:
            piece = b",".join(payloads[start : index + 1])
            yield piece if start == 0 else b"," + piece
            start, size = index + 1, 0
    if start < len(payloads):
        piece = b",".join(payloads[start:])
        yield piece if start == 0 else b"," + piece
    yield b"]"


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


def _auth_ok(header: str | None, token: str) -> bool:
    """`Bearer <token>` (OAS) or legacy Basic `bearer:<token>` (research §2)."""
    if not header or " " not in header:
        return False
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    expected = token.encode("utf-8")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(credentials.encode("utf-8"), expected)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return False
        username, sep, password = decoded.partition(b":")
        return sep == b":" and username == b"bearer" and hmac.compare_digest(password, expected)
    return False


def _format_retry_after(seconds: float, fractional: bool) -> str:
    if fractional:
        return f"{max(seconds, 0.001):.3f}".rstrip("0").rstrip(".")
    return str(max(1, math.ceil(seconds)))


def _check_loopback(host: str) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"emulator binds to IPv4 loopback addresses only, got {host!r}") from None
    if address.version != 4 or not address.is_loopback:
        raise ValueError(f"emulator binds to IPv4 loopback addresses only, got {host!r}")


# ------------------------------------------------------------------------------------------------------------------
# Emulator
# ------------------------------------------------------------------------------------------------------------------


class DixaEmulator:
    """A local Dixa Exports API. See the module docstring and `EmulatorConfig`."""

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config if config is not None else EmulatorConfig()
        _check_loopback(host)
        if self.config.start_ms >= self.config.end_ms:
            raise ValueError("start_ms must be before end_ms")
        if self.config.conversations < 0 or self.config.messages_per_conversation < 0:
            raise ValueError("conversations and messages_per_conversation must not be negative")
        unknown = set(self.config.fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; expected some of {FAULT_KINDS}")
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

        # One lock guards the data, the fault queue/rng and the rate-limit window.
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self.request_log: list[RequestRecord] = []
        self._queued_faults: deque[str] = deque()
        self._fault_rng_seed = self.config.fault_seed
        self._fault_rng = random.Random(self._fault_rng_seed)
        self._rate_window: deque[float] = deque()

        self._conversations: _Table[int] = _Table("updated_at", ("created_at", "closed_at"))
        self._messages: _Table[str] = _Table("created_at", ())
        rng = random.Random(self.config.seed)
        self._generator = _Generator(_Pools.build(rng), self.config.messages_per_conversation)
        # Changes made after construction draw from their own stream, so the initial data never depends on them.
        self._mutation_rng = random.Random(f"dixa-emulator-mutations-{self.config.seed}")
        self._generate(rng)

    # ---- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._server = _Server((self._host, self._port), self)
        port = self._server.server_address[1]
        self._url = f"http://{self._host}:{port}"
        # stop() waits up to one poll interval; tests start and stop many emulators, so keep it short.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="dixa-emulator", daemon=True
        )
        self._thread.start()
        return self._url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> DixaEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("emulator not started")
        return self._url

    # ---- faults and log ------------------------------------------------------------------------------------------

    def inject(self, *faults: str) -> None:
        """Queue faults for the next requests, one per request, in order.

        Only requests that pass authentication and the rate limiter consume a queued fault.
        """
        unknown = [fault for fault in faults if fault not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; expected some of {FAULT_KINDS}")
        with self._lock:
            self._queued_faults.extend(faults)

    def clear_log(self) -> None:
        with self._log_lock:
            self.request_log.clear()

    # ---- ground truth --------------------------------------------------------------------------------------------

    def conversations(self) -> list[dict[str, Any]]:
        """Copies of all conversations, ordered by id."""
        with self._lock:
            records = self._conversations.records()
        return sorted(records, key=lambda record: int(record["id"]))

    def messages(self) -> list[dict[str, Any]]:
        """Copies of all messages, in served order: by (created_at, id)."""
        with self._lock:
            return self._messages.records()

    def expected_conversation_ids(self, start_ms: int, end_ms: int) -> set[int]:
        """Ids with `start_ms <= updated_at < end_ms`."""
        with self._lock:
            return set(self._conversations.keys_between(start_ms, end_ms))

    def expected_message_ids(self, start_ms: int, end_ms: int) -> set[str]:
        """Ids with `start_ms <= created_at < end_ms`."""
        with self._lock:
            return set(self._messages.keys_between(start_ms, end_ms))

    # ---- changing data between syncs -----------------------------------------------------------------------------

    def update_conversations(self, ids: Iterable[int], updated_at_ms: int) -> None:
        """Touch conversations: set `updated_at`, close them at that time and bump `emulator_extra_field.revision`.

        `updated_at` only moves forward in a real account, so a value below a conversation's current `updated_at`
        raises ValueError (use `add_conversations` to place records anywhere in time). Unknown ids raise KeyError.
        """
        with self._lock:
            records = [self._conversations.get(conversation_id) for conversation_id in ids]
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
                self._conversations.put(record)

    def reply_to_conversations(self, ids: Iterable[int], at_ms: int) -> list[str]:
        """A new outbound message in each conversation, created at `at_ms`, which also updates the conversation.

        This is how conversations change in a real account; returns the new message ids.
        """
        ids = list(ids)
        self.update_conversations(ids, at_ms)
        with self._lock:
            template = self._messages.first_record()
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
                    text=f"Following up on #{conversation_id} — «done» \"quoted\"\nthanks",
                )
                self._messages.put(message)
                new_ids.append(message["id"])
            return new_ids

    def add_conversations(self, count: int, updated_at_ms: int) -> list[int]:
        """Create `count` conversations with `updated_at == updated_at_ms` (messages at or before it); return ids."""
        with self._lock:
            rng = self._mutation_rng
            next_id = max(self._conversations._cursor_by_id, default=999) + 1
            new_ids: list[int] = []
            for conversation_id in range(next_id, next_id + count):
                created_ms = updated_at_ms - self._generator.lifetime_ms(rng)
                record, messages = self._generator.conversation(
                    rng, conversation_id, created_ms, updated_at_ms, self._generator.message_count(rng), False
                )
                self._conversations.put(record)
                for message in messages:
                    self._messages.put(message)
                new_ids.append(conversation_id)
            return new_ids

    # ---- internals -----------------------------------------------------------------------------------------------

    def _generate(self, rng: random.Random) -> None:
        config = self.config
        count = config.conversations
        generator = self._generator
        span_ms = config.end_ms - config.start_ms
        updated = [config.start_ms + int(rng.random() * span_ms) for _ in range(count)]
        lifetimes = [generator.lifetime_ms(rng) for _ in range(count)]
        pinned = _special_times(rng, count, config.start_ms, config.end_ms)
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
                (updated_ms, record["id"], _dumps(record), (record["created_at"], record["closed_at"]))
            )
            for message in messages:
                message_rows.append((message["created_at"], message["id"], _dumps(message), ()))
        self._conversations.bulk_load(conversation_rows)
        self._messages.bulk_load(message_rows)

    def _append_log(self, record: RequestRecord) -> None:
        # Appended before the response is sent, so a client that has its answer always finds the entry.
        with self._log_lock:
            self.request_log.append(record)

    def _retry_after(self, config: EmulatorConfig, now: float) -> list[tuple[str, str]]:
        if config.retry_after_s is None:
            return []
        if config.retry_after_s == 0:
            wait_s = 1.0
            limit = config.rate_limit
            if limit is not None and len(self._rate_window) >= limit:
                # The slot that frees first belongs to the request that will leave the window first.
                oldest = self._rate_window[len(self._rate_window) - limit]
                wait_s = oldest + config.rate_window_s - now
        else:
            wait_s = config.retry_after_s
        return [("Retry-After", _format_retry_after(wait_s, config.retry_after_fractional))]

    def _admit(self, config: EmulatorConfig, now: float) -> tuple[bool, str | None, list[tuple[str, str]]]:
        """Rate limit, then pick a fault. Returns (admitted, fault, Retry-After headers for a limiter 429)."""
        with self._lock:
            window = self._rate_window
            while window and window[0] <= now - config.rate_window_s:
                window.popleft()
            if config.rate_limit is not None and len(window) >= config.rate_limit:
                # A limiter 429 does not take a slot, otherwise a polling client could never get back in.
                return False, RATE_LIMIT_FAULT, self._retry_after(config, now)
            window.append(now)
            if self._queued_faults:
                return True, self._queued_faults.popleft(), []
            if config.fault_seed != self._fault_rng_seed:
                self._fault_rng_seed = config.fault_seed
                self._fault_rng = random.Random(config.fault_seed)
            if config.fault_rate > 0 and config.fault_kinds and self._fault_rng.random() < config.fault_rate:
                return True, self._fault_rng.choice(config.fault_kinds), []
            return True, None, []

    @staticmethod
    def _parse_query(path: str, params: dict[str, str], config: EmulatorConfig) -> tuple[list[_Bound], int] | None:
        """The filters of a valid query and its span in ms, or None for a 400 (documented rules, research §1)."""
        if _UNEMULATED_PARAMS[path] & params.keys():
            return None
        bounds: list[_Bound] = []
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
            bounds.append(_Bound(field, after_ms, before_ms, config.after_inclusive, config.before_inclusive))
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

    def _handle(self, handler: _Handler) -> None:
        now = time.monotonic()
        config = self.config
        parts = urlsplit(handler.path)
        path = parts.path
        params = {name: values[-1] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
        auth_ok = _auth_ok(handler.headers.get("Authorization"), config.token)

        def log(status: int, fault: str | None) -> None:
            self._append_log(RequestRecord(now, path, params, status, fault, auth_ok))

        if path not in _ENDPOINT_FILTERS:
            log(404, None)
            handler.send_empty(404)
            return
        if not auth_ok:
            log(401, None)  # "401 Invalid or missing credentials", no body (research §2, §4)
            handler.send_empty(401)
            return
        admitted, fault, retry_headers = self._admit(config, now)
        if not admitted:
            log(429, fault)  # "429 API limit has been reached" (research §3, §4)
            handler.send_empty(429, retry_headers)
            return

        if fault == "reset":
            log(0, fault)
            handler.reset()
            return
        if fault is not None and fault in _STATUS_FAULTS:
            headers: list[tuple[str, str]] = []
            if fault == "429":
                with self._lock:
                    headers = self._retry_after(config, now)
            log(int(fault), fault)
            handler.send_empty(int(fault), headers)
            return
        if fault == "not_json":
            log(200, fault)
            handler.send_bytes(200, "text/html", b"<html>oops</html>")
            return
        if fault == "json_object":
            log(200, fault)
            handler.send_bytes(200, "application/json", b'{"message": "unexpected"}')
            return
        if fault == "slow":
            time.sleep(config.slow_s)
        elif fault is not None and fault not in _BODY_FAULTS:
            # An unknown kind set at runtime in config.fault_kinds: serve it as a generic server error.
            log(500, fault)
            handler.send_empty(500)
            return

        query = self._parse_query(path, params, config)
        if query is None:
            log(400, fault)  # "400 Invalid query parameters", no body (research §4)
            handler.send_empty(400)
            return
        bounds, span_ms = query
        if config.fail_span_over_ms is not None and span_ms > config.fail_span_over_ms:
            log(504, SPAN_FAULT)
            handler.send_empty(504)
            return

        table = self._conversations if path == CONVERSATION_PATH else self._messages
        with self._lock:
            payloads = table.select(bounds)
            fallback = table.first_payload()
        if fault == "missing_cursor":
            payloads = _drop_cursor(list(payloads), fallback, table.cursor_field)
        content_type = "text/plain" if fault == "wrong_content_type" else "application/json"
        log(200, fault)
        handler.send_array(payloads, content_type, truncate=fault == "truncate")


def _drop_cursor(payloads: list[bytes], fallback: bytes | None, cursor_field: str) -> list[bytes]:
    """Remove the cursor from the middle record; an empty range gets one such record from the account instead."""
    if not payloads:
        if fallback is None:
            return payloads
        payloads = [fallback]
    index = len(payloads) // 2
    record = json.loads(payloads[index])
    record.pop(cursor_field, None)
    payloads[index] = _dumps(record)
    return payloads


# ------------------------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(description="Serve a local emulator of the Dixa Exports API on 127.0.0.1.")
    parser.add_argument("--conversations", type=int, default=defaults.conversations)
    parser.add_argument("--messages-per-conversation", type=float, default=defaults.messages_per_conversation)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--port", type=int, default=0, help="0 lets the OS choose")
    parser.add_argument("--token", default=defaults.token)
    parser.add_argument("--start-ms", type=int, default=defaults.start_ms)
    parser.add_argument("--end-ms", type=int, default=defaults.end_ms)
    parser.add_argument("--after-inclusive", action="store_true")
    parser.add_argument("--before-inclusive", action="store_true")
    parser.add_argument("--rate-limit", type=int, default=None)
    parser.add_argument("--rate-window-s", type=float, default=defaults.rate_window_s)
    parser.add_argument("--retry-after-s", type=float, default=None)
    parser.add_argument("--fault-rate", type=float, default=defaults.fault_rate)
    parser.add_argument("--fault-seed", type=int, default=defaults.fault_seed)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    config = EmulatorConfig(
        token=args.token,
        seed=args.seed,
        conversations=args.conversations,
        messages_per_conversation=args.messages_per_conversation,
        start_ms=args.start_ms,
        end_ms=args.end_ms,
        after_inclusive=args.after_inclusive,
        before_inclusive=args.before_inclusive,
        rate_limit=args.rate_limit,
        rate_window_s=args.rate_window_s,
        retry_after_s=args.retry_after_s,
        fault_rate=args.fault_rate,
        fault_seed=args.fault_seed,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator = DixaEmulator(config, port=args.port)
    url = emulator.start()
    summary = {
        "url": url,
        "token": config.token,
        "conversations": len(emulator._conversations),
        "messages": len(emulator._messages),
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.flush()
    try:
        # Wake up regularly: a plain wait() can miss a signal that arrives before it starts blocking.
        while not stop.wait(0.2):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
