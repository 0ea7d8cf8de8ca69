"""Pieces both emulated APIs share: time units, the JSON encoder, seeded random helpers and timestamp formats."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

# One encoder for every record: compact, and raw UTF-8 (not \u escapes) so clients must decode properly.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_T = TypeVar("_T")


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, the way every record and body is served."""
    return _ENCODER.encode(value).encode("utf-8")


# Generation draws hundreds of values per record; these float-based helpers are several times faster than
# Random.choice/randint (which reject-sample on getrandbits) and still fully determined by the seed.


def pick(rng: random.Random, options: Sequence[_T]) -> _T:
    return options[int(rng.random() * len(options))]


def randint(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID string from the seeded stream (same result as `str(uuid.UUID(int=..., version=4))`)."""
    value = rng.getrandbits(128)
    value = (value & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def phone(rng: random.Random) -> str:
    """A Danish number, written `+4520304050` or `004520304050`.

    Both forms look numeric to type-guessing loaders (pandas turns them into 4520304050 or 4520304050.0 and drops
    the `+` or the leading zeros), which is exactly what the tests must catch. The form is derived from the number
    itself, so the random stream, and with it every other generated value, does not depend on it.
    """
    number = randint(rng, 20_000_000, 99_999_999)
    return f"0045{number}" if number % 3 == 0 else f"+45{number}"


_DAYS: dict[int, str] = {}  # day number -> "YYYY-MM-DD", so formatting 300k timestamps stays cheap


def _clock(ms: int) -> str:
    day, rest = divmod(ms, DAY_MS)
    text = _DAYS.get(day)
    if text is None:
        text = _DAYS[day] = f"{_EPOCH + timedelta(days=day):%Y-%m-%d}"
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{text}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}"


def iso_utc(ms: int, zone_id: str = "") -> str:
    """`2021-12-01T12:46:36.581Z`, plus `[<zone_id>]` when given (`...Z[GMT]`, as the Dixa API writes some)."""
    return f"{_clock(ms)}Z[{zone_id}]" if zone_id else f"{_clock(ms)}Z"


def iso_local(ms: int) -> str:
    """`2021-12-01T12:46:35.935`: UTC without any zone designator (the presence endpoint's format)."""
    return _clock(ms)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def drop_field(payloads: list[bytes], fallback: bytes | None, field: str) -> list[bytes]:
    """Remove `field` from the middle record; an empty list gets one such record (`fallback`) instead."""
    if not payloads:
        if fallback is None:
            return payloads
        payloads = [fallback]
    index = len(payloads) // 2
    record = json.loads(payloads[index])
    record.pop(field, None)
    payloads[index] = dumps(record)
    return payloads
