"""Storage for the Dixa API: records kept as their JSON bytes (served without re-encoding), and opaque page keys."""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any

from .common import dumps


class RecordList:
    """Records served in a fixed order, stored only as JSON bytes, with an index on `key` for changes."""

    def __init__(self, key: str = "id") -> None:
        self.key = key
        self._payloads: list[bytes] = []
        self._index: dict[Any, int] = {}

    def __len__(self) -> int:
        return len(self._payloads)

    def load(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.put(record)

    def put(self, record: dict[str, Any]) -> None:
        """Replace the record with the same key in place, or append it."""
        key = record.get(self.key)
        payload = dumps(record)
        index = self._index.get(key) if key is not None else None
        if index is None:
            if key is not None:
                self._index[key] = len(self._payloads)
            self._payloads.append(payload)
        else:
            self._payloads[index] = payload

    def remove(self, key: Any) -> None:
        index = self._index.pop(key)
        del self._payloads[index]
        self._index = {k: i - 1 if i > index else i for k, i in self._index.items()}

    def get(self, key: Any) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(self._payloads[self._index[key]])
        return record

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def ids(self) -> list[Any]:
        return list(self._index)

    def payloads(self) -> list[bytes]:
        """The live list (callers slice it under the emulator's lock)."""
        return self._payloads

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for payload in self._payloads]


class EventLog:
    """Activity events sorted by (activity ms, id), as JSON bytes, with the three serving orders."""

    def __init__(self) -> None:
        self._keys: list[tuple[int, str]] = []
        self._payloads: list[bytes] = []
        self._version = 0
        self._shuffled: dict[tuple[int, int, int], list[int]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def bulk_load(self, rows: list[tuple[int, str, bytes]]) -> None:
        rows.sort(key=lambda row: (row[0], row[1]))
        self._keys = [(at_ms, key) for at_ms, key, _ in rows]
        self._payloads = [payload for _, _, payload in rows]
        self._changed()

    def insert(self, at_ms: int, key: str, payload: bytes) -> None:
        index = bisect.bisect_left(self._keys, (at_ms, key))
        self._keys.insert(index, (at_ms, key))
        self._payloads.insert(index, payload)
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._shuffled.clear()

    def span(
        self, from_ms: int | None, from_inclusive: bool, to_ms: int | None, to_inclusive: bool, cutoff_ms: int | None
    ) -> tuple[int, int]:
        """The index range [lo, hi) of events inside the bounds (and at or before `cutoff_ms`, when given)."""
        # (t,) sorts before every (t, id), so bisecting on (t,) / (t + 1,) finds the first event >= t / > t.
        lo, hi = 0, len(self._keys)
        if from_ms is not None:
            lo = bisect.bisect_left(self._keys, (from_ms if from_inclusive else from_ms + 1,))
        if to_ms is not None:
            hi = bisect.bisect_left(self._keys, (to_ms + 1 if to_inclusive else to_ms,))
        if cutoff_ms is not None:
            hi = min(hi, bisect.bisect_left(self._keys, (cutoff_ms + 1,)))
        return lo, max(lo, hi)

    def page(self, lo: int, hi: int, order: str, offset: int, limit: int) -> list[bytes]:
        """Events [offset, offset + limit) of the range in `order`: "asc", "desc" or "shuffled" (by event id, which
        is random, so unrelated to time yet the same on every request)."""
        if order == "desc":
            stop = hi - offset
            start = max(lo, stop - limit)
            return self._payloads[start:stop][::-1] if stop > start else []
        if order == "shuffled":
            cache_key = (lo, hi, self._version)
            ranked = self._shuffled.get(cache_key)
            if ranked is None:
                keys = self._keys
                ranked = sorted(range(lo, hi), key=lambda index: keys[index][1])
                if len(self._shuffled) > 32:
                    self._shuffled.clear()
                self._shuffled[cache_key] = ranked
            return [self._payloads[index] for index in ranked[offset : offset + limit]]
        start = lo + offset
        return self._payloads[start : min(hi, start + limit)]

    def first_payload(self) -> bytes | None:
        return self._payloads[0] if self._payloads else None

    def ids_between(self, start_ms: int, end_ms: int) -> list[str]:
        lo = bisect.bisect_left(self._keys, (start_ms,))
        hi = bisect.bisect_left(self._keys, (end_ms,))
        return [key for _, key in self._keys[lo:hi]]

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for payload in self._payloads]


class PageKeys:
    """Opaque `pageKey`s: urlsafe base64 (unpadded) of JSON carrying the route, offset, page size and the original
    filters, signed so that a key a client builds or edits is refused like a malformed one (400)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, body: dict[str, Any]) -> str:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return hmac.new(self._secret, canonical, hashlib.sha256).hexdigest()[:16]

    def encode(self, route: str, offset: int, limit: int, filters: dict[str, Any]) -> str:
        body: dict[str, Any] = {"r": route, "o": offset, "l": limit, "f": filters}
        body["s"] = self._sign(body)
        raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, key: str, route: str) -> tuple[int, int, dict[str, Any]] | None:
        """(offset, limit, filters) of a key this server issued for `route`, else None."""
        try:
            raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
            body = json.loads(raw)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict) or set(body) != {"r", "o", "l", "f", "s"}:
            return None
        signature = body.pop("s")
        if not isinstance(signature, str) or not hmac.compare_digest(signature, self._sign(body)):
            return None
        offset, limit, filters = body["o"], body["l"], body["f"]
        if body["r"] != route or not isinstance(filters, dict):
            return None
        if type(offset) is not int or type(limit) is not int or offset < 0 or limit < 1:
            return None
        return offset, limit, filters
