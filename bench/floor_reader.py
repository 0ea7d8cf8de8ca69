"""The floor for `bench/run_bench.py`: the connector's HTTP requests with none of its machinery.

It reads the same config file as `source-dixa read`, covers `[start_date, now)` in the same windows
(`batch_size` days, capped at 31 days minus 1 ms), sends the same `updated_after=start-1&updated_before=end`
query per window, parses each body with `response.json()`, keeps `start <= updated_at < end` and writes one
`json.dumps(record)` line per record to stdout (the benchmark points stdout at /dev/null).

No CDK, no ijson, no Airbyte envelope: whatever the connector costs above this is its own overhead.
The last line on stderr is a JSON summary: records written, requests sent, body bytes, windows.

    python bench/floor_reader.py --config config.json > /dev/null
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime
from typing import Any

import requests

DAY_MS = 86_400_000
# The Exports API refuses spans over 31 days; the request reaches 1 ms below the window, hence the -1.
MAX_WINDOW_MS = 31 * DAY_MS - 1
STREAMS = {"conversation_export": "updated_at", "message_export": "created_at"}
PARAMS = {"updated_at": ("updated_after", "updated_before"), "created_at": ("created_after", "created_before")}


def start_ms_of(text: str) -> int:
    """`YYYY-MM-DD` as UTC midnight, or an ISO-8601 datetime (UTC when it has no zone)."""
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    else:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def windows(start_ms: int, end_ms: int, batch_days: int) -> list[tuple[int, int]]:
    span_ms = min(batch_days * DAY_MS, MAX_WINDOW_MS)
    result = []
    cursor = start_ms
    while cursor < end_ms:
        result.append((cursor, min(cursor + span_ms, end_ms)))
        cursor = result[-1][1]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the same config file `source-dixa read` gets")
    parser.add_argument("--stream", default="conversation_export", choices=sorted(STREAMS))
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:
        config: dict[str, Any] = json.load(handle)

    cursor = STREAMS[args.stream]
    after_param, before_param = PARAMS[cursor]
    url = f"{config['api_url'].rstrip('/')}/v1/{args.stream}"
    plan = windows(start_ms_of(config["start_date"]), time.time_ns() // 1_000_000, int(config.get("batch_size", 31)))
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {config['api_token']}", "Accept": "application/json"})
    write = sys.stdout.write
    dumps = json.dumps
    records = body_bytes = 0
    for start_ms, end_ms in plan:
        response = session.get(url, params={after_param: start_ms - 1, before_param: end_ms}, timeout=(10, 300))
        response.raise_for_status()
        body_bytes += len(response.content)
        for record in response.json():
            if start_ms <= record[cursor] < end_ms:
                write(dumps(record) + "\n")
                records += 1
    sys.stdout.flush()
    summary = {"records": records, "requests": len(plan), "body_bytes": body_bytes, "windows": plan}
    sys.stderr.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
