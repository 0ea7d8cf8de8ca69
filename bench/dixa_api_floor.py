"""The floor for `bench/dixa_api_bench.py`: the connector's Dixa API requests with none of its machinery.

It reads the same config file as `source-dixa read` and sends the same requests, one after another:

- `end_users`: GET /v1/endusers?pageLimit=1000, then every `meta.next` link (resolved against `dixa_api_url`)
  until a page has none.
- `activity_logs`: GET /v1/conversations/activitylog in the connector's windows, chosen by the connector's rule
  (source_dixa/dixa_api.py): `[start_date, now - safety lag)` cut into windows that start at 1 day, double after a
  window that fit in one page, halve (not below 1 hour) after one that took more than 20 pages, never over 31 days.
  Each window asks `fromDatetime=start-1ms&toDatetime=end&pageLimit=1000`, follows `meta.next` to the end, and keeps
  `start <= activityTimestamp < end` (the one check needed for a correct count: the request is a millisecond wider).
  Same data, same rule: the same windows and pages as the connector; the bench checks the request counts agree.

Each body is parsed with `response.json()` and every record written as one `json.dumps(record)` line to stdout
(the bench points it at /dev/null). No CDK, no pacing, no retries, no timestamp normalisation, no Airbyte envelope.
The last line on stderr is a JSON summary: records and requests per stream, body bytes, activity windows.

    python bench/dixa_api_floor.py --config config.json [--streams end_users,activity_logs] > /dev/null
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import requests

DAY_MS = 86_400_000
PAGE_LIMIT = 1000
# The connector's window rule (source_dixa/dixa_api.py: FIRST_WINDOW_MS, MIN_WINDOW_MS, MAX_WINDOW_MS, BUSY_PAGES).
FIRST_WINDOW_MS = DAY_MS
MIN_WINDOW_MS = 3_600_000
MAX_WINDOW_MS = 31 * DAY_MS
BUSY_PAGES = 20
DEFAULT_SAFETY_LAG_MINUTES = 60
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ENDPOINTS = {"end_users": "v1/endusers", "activity_logs": "v1/conversations/activitylog"}


def start_ms_of(text: str) -> int:
    """`YYYY-MM-DD` as UTC midnight, or an ISO-8601 datetime (UTC when it has no zone)."""
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def iso_to_ms(text: str) -> int:
    """`2026-10-27T00:00:00.000Z[GMT]` (zone id optional; no zone = UTC) as Unix milliseconds."""
    if text.endswith("]"):
        text = text[: text.rfind("[")]
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def ms_to_param(t_ms: int) -> str:
    return (EPOCH + timedelta(milliseconds=t_ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def next_span_ms(span_ms: int, pages: int) -> int:
    if pages <= 1:
        return min(MAX_WINDOW_MS, span_ms * 2)
    if pages > BUSY_PAGES:
        return max(MIN_WINDOW_MS, span_ms // 2)
    return span_ms


class Reader:
    def __init__(self, config: dict[str, Any]) -> None:
        self.base = str(config.get("dixa_api_url") or "https://dev.dixa.io").rstrip("/") + "/"
        self.session = requests.Session()
        # The Dixa API takes the raw token, no "Bearer" (source_dixa/dixa_api.py RawTokenAuthenticator).
        self.session.headers.update({"Authorization": str(config["api_token"]).strip(), "Accept": "application/json"})
        self.requests = 0
        self.body_bytes = 0

    def pages(self, url: str, params: dict[str, Any] | None) -> Iterator[list[dict[str, Any]]]:
        """Every page of one list: the first with `params`, then each `meta.next` as given."""
        while True:
            response = self.session.get(url, params=params, timeout=(10, 120))
            response.raise_for_status()
            self.requests += 1
            self.body_bytes += len(response.content)
            body = response.json()
            yield body["data"]
            link = (body.get("meta") or {}).get("next")
            if not link:
                return
            url, params = urljoin(self.base, link), None


def read_end_users(reader: Reader, write: Callable[[str], Any]) -> int:
    dumps, records = json.dumps, 0
    for page in reader.pages(reader.base + ENDPOINTS["end_users"], {"pageLimit": PAGE_LIMIT}):
        for record in page:
            write(dumps(record) + "\n")
        records += len(page)
    return records


def read_activity_logs(
    reader: Reader, write: Callable[[str], Any], start_ms: int, end_ms: int, windows: list[list[int]]
) -> int:
    dumps, records = json.dumps, 0
    url = reader.base + ENDPOINTS["activity_logs"]
    span_ms, cursor_ms = FIRST_WINDOW_MS, start_ms
    while cursor_ms < end_ms:
        lo, hi = cursor_ms, min(cursor_ms + span_ms, end_ms)
        params = {"pageLimit": PAGE_LIMIT, "fromDatetime": ms_to_param(lo - 1), "toDatetime": ms_to_param(hi)}
        pages = 0
        for page in reader.pages(url, params):
            pages += 1
            for record in page:
                if lo <= iso_to_ms(record["activityTimestamp"]) < hi:
                    write(dumps(record) + "\n")
                    records += 1
        windows.append([lo, hi, pages])
        cursor_ms, span_ms = hi, next_span_ms(span_ms, pages)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the same config file `source-dixa read` gets")
    parser.add_argument("--streams", default="end_users,activity_logs", help="comma-separated, read in this order")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:
        config: dict[str, Any] = json.load(handle)
    streams = [name.strip() for name in args.streams.split(",") if name.strip()]
    unknown = sorted(set(streams) - set(ENDPOINTS))
    if unknown:
        parser.error(f"unknown streams: {', '.join(unknown)}")

    reader = Reader(config)
    write = sys.stdout.write
    lag_ms = int(config.get("safety_lag_minutes", DEFAULT_SAFETY_LAG_MINUTES)) * 60_000
    summary: dict[str, Any] = {"records": {}, "requests": {}, "windows": []}
    for name in streams:
        before = reader.requests
        if name == "end_users":
            summary["records"][name] = read_end_users(reader, write)
        else:
            end_ms = time.time_ns() // 1_000_000 - lag_ms
            start_ms = start_ms_of(config["start_date"])
            summary["records"][name] = read_activity_logs(reader, write, start_ms, end_ms, summary["windows"])
        summary["requests"][name] = reader.requests - before
    sys.stdout.flush()
    summary["body_bytes"] = reader.body_bytes
    sys.stderr.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
