"""Dixa API timestamps: ISO-8601 text, sometimes with a zone-id suffix or no zone, to UTC milliseconds and back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Optional

from source_dixa.windows import ms_to_iso


def parse_iso(text: str) -> Optional[datetime]:
    """An aware UTC datetime, or None when `text` is not ISO-8601.

    Dixa writes `2021-12-01T12:46:36.581Z[GMT]` (a zone id after the offset) and, for presence,
    `2021-12-01T12:46:35.935` with no zone at all, which is UTC (dixa-api.md §4).

    >>> parse_iso("2021-12-01T12:46:36.581Z[GMT]").isoformat()
    '2021-12-01T12:46:36.581000+00:00'
    >>> parse_iso("2021-12-01T13:46:36+01:00[Europe/Copenhagen]").isoformat()
    '2021-12-01T12:46:36+00:00'
    """
    if text.endswith("]"):
        text = text[: text.rfind("[")]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_to_ms(text: str) -> Optional[int]:
    """Unix milliseconds of an ISO-8601 text (sub-millisecond digits dropped), or None when it is not one.

    >>> iso_to_ms("1970-01-01T00:00:01.5Z[GMT]")
    1500
    """
    moment = parse_iso(text)
    if moment is None:
        return None
    return (moment - _EPOCH) // _ONE_MS


def normalize_iso(value: object) -> object:
    """A Dixa timestamp as plain ISO-8601 UTC ending in `Z`; anything that is not a timestamp comes back as it was.

    >>> normalize_iso("2021-12-01T12:46:36.581Z[GMT]"), normalize_iso("2021-12-01T12:46:35.935")
    ('2021-12-01T12:46:36.581Z', '2021-12-01T12:46:35.935Z')
    """
    if not isinstance(value, str):
        return value
    if value.endswith("Z[GMT]"):
        # By far the most common form: no parsing needed.
        return value[:-5]
    if value.endswith("Z") and "[" not in value:
        return value
    moment = parse_iso(value)
    if moment is None:
        return value
    text = moment.isoformat(timespec="microseconds" if moment.microsecond % 1000 else "milliseconds")
    if moment.microsecond == 0:
        text = moment.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def ms_to_dixa_param(t_ms: int) -> str:
    """A query value for `fromDatetime`/`toDatetime`: always with milliseconds, as peers send them (dixa-api.md §4).

    >>> ms_to_dixa_param(1500)
    '1970-01-01T00:00:01.500Z'
    """
    moment = _EPOCH + timedelta(milliseconds=t_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["iso_to_ms", "ms_to_dixa_param", "ms_to_iso", "normalize_iso", "parse_iso"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
