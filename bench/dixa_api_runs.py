"""The processes of `bench/dixa_api_bench.py`: the logged emulator, the two readers, and what their output and the
emulator's request log say about each run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))
from run_bench import _reap, _watchdog, serve  # noqa: E402  (bench/ is not a package)

from integration_tests.cli import cli_command  # noqa: E402  (standard library only: no CDK in the bench process)

DAY_MS = 86_400_000
TOKEN = "bench-token"
STREAMS = ("end_users", "activity_logs")
PATH_STREAM = {"/v1/endusers": "end_users", "/v1/conversations/activitylog": "activity_logs"}
MB = 1_000_000
RECORD = b'{"type":"RECORD"'
STREAM_RECORD = {name: b'{"type":"RECORD","record":{"stream":"' + name.encode() + b'"' for name in STREAMS}
# The connector's per-stream summary (source_dixa/http_common.py, log_stream_summary).
SUMMARY_LOG = re.compile(r"^(\w+): (\d+) requests?, (\d+) x 429, ([\d.]+) s waiting")


@dataclass(frozen=True)
class Data:
    end_users: int
    activity_events: int
    page_cap: int
    rate_per_s: float | None = None
    burst: int = 4
    days: int = 30


@dataclass
class Run:
    reader: str  # "connector" | "floor"
    repeat: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int
    records: dict[str, int] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)  # 200s per stream in the emulator's log
    http_429: int = 0
    first_request_s: float | None = None  # spawn -> first request the emulator saw: start-up
    pages_span_s: float | None = None  # first request -> last request
    reported_requests: dict[str, int] = field(default_factory=dict)  # the reader's own count
    reported_429: int | None = None
    state_record_count: int | None = None
    errors: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------------------
# Processes
# ------------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def emulator(data: Data, today_ms: int, log_path: Path) -> Iterator[dict[str, Any]]:
    command = [
        sys.executable, str(BENCH / "dixa_emulator_logged.py"), "--request-log", str(log_path),
        "--conversations", "100", "--messages-per-conversation", "0",
        "--end-users", str(data.end_users), "--activity-events", str(data.activity_events),
        "--page-cap", str(data.page_cap), "--start-ms", str(today_ms - data.days * DAY_MS), "--end-ms", str(today_ms),
        "--port", "0", "--token", TOKEN,
    ]  # fmt: skip
    if data.rate_per_s is not None:
        command += ["--dixa-rate-per-s", str(data.rate_per_s), "--dixa-burst", str(data.burst)]
    with serve(command, 60 + (data.end_users + data.activity_events) / 5000) as summary:
        yield summary


def timed(command: list[str], stdout: Any, stderr: Any, timeout_s: float) -> tuple[float, float, int, Any]:
    """Spawn, wait; (spawn time on the monotonic clock, wall s, exit code, the child's own rusage)."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT)
    watchdog = _watchdog(process, timeout_s)
    returncode, usage = _reap(process)
    wall_s = time.monotonic() - started
    watchdog.cancel()
    return started, wall_s, returncode, usage


def count_records(fd: int) -> tuple[int, dict[str, int], list[bytes]]:
    """RECORD lines readable from `fd`: in all, per stream, and every other line (LOG, STATE, TRACE)."""
    total, per_stream, carry = 0, dict.fromkeys(STREAMS, 0), b""
    others: list[bytes] = []
    while chunk := os.read(fd, 1 << 20):
        buffer = carry + chunk if carry else chunk
        cut = buffer.rfind(b"\n") + 1
        complete, carry = buffer[:cut], buffer[cut:]
        found = complete.count(b"\n" + RECORD) + complete.startswith(RECORD)
        total += found
        for name, prefix in STREAM_RECORD.items():
            per_stream[name] += complete.count(b"\n" + prefix) + complete.startswith(prefix)
        if found != complete.count(b"\n"):
            others.extend(line for line in complete.split(b"\n")[:-1] if not line.startswith(RECORD))
    for name, prefix in STREAM_RECORD.items():
        per_stream[name] += carry.startswith(prefix)
    total += carry.startswith(RECORD)
    if carry and not carry.startswith(RECORD):
        others.append(carry)
    return total, per_stream, others


def read_log(run: Run, log_path: Path, started: float) -> None:
    """The emulator's entries for this run's Dixa API requests: pages per stream, 429s, start-up, span."""
    entries = []
    for line in log_path.read_text(encoding="utf-8").splitlines():
        t_s, api, path, status, _ = json.loads(line)
        if api == "dixa" and started <= t_s <= started + run.wall_s:
            entries.append((t_s, path, status))
    for _, path, status in entries:
        if status == 200:
            name = PATH_STREAM.get(path, path)
            run.pages[name] = run.pages.get(name, 0) + 1
        run.http_429 += status == 429
    if entries:
        run.first_request_s = entries[0][0] - started
        run.pages_span_s = entries[-1][0] - entries[0][0]


def run_connector(config: Path, catalog: Path, log_path: Path, repeat: int, timeout_s: float) -> Run:
    command = [*cli_command(), "read", "--config", str(config), "--catalog", str(catalog)]
    with tempfile.TemporaryFile() as stderr, tempfile.TemporaryFile(dir=config.parent) as out:
        started, wall_s, returncode, usage = timed(command, out, stderr, timeout_s)
        out.seek(0)
        total, per_stream, others = count_records(out.fileno())
        stderr.seek(0)
        stderr_text = stderr.read().decode("utf-8", "replace")
    run = Run("connector", repeat, wall_s, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024 / MB, returncode)
    run.records = per_stream
    if total != sum(per_stream.values()):
        run.errors.append(f"{total - sum(per_stream.values())} RECORD lines of other streams")
    for line in others:
        try:
            message = json.loads(line)
        except ValueError:
            run.errors.append(f"unparseable output line: {line[:200]!r}")
            continue
        kind = message.get("type")
        if kind == "STATE":
            count = (message["state"].get("sourceStats") or {}).get("recordCount")
            if count is not None:
                run.state_record_count = (run.state_record_count or 0) + int(count)
        elif kind == "TRACE" and message["trace"].get("type") == "ERROR":
            run.errors.append(f"error trace: {message['trace']['error'].get('message')}")
        elif kind == "LOG" and (match := SUMMARY_LOG.match(message["log"].get("message", ""))):
            run.reported_requests[match[1]] = int(match[2])
            run.reported_429 = (run.reported_429 or 0) + int(match[3])
    if returncode != 0:
        run.errors.append(f"exit code {returncode}; stderr tail: {stderr_text[-1500:]}")
    read_log(run, log_path, started)
    return run


def run_floor(config: Path, log_path: Path, repeat: int, timeout_s: float) -> Run:
    command = [sys.executable, str(BENCH / "dixa_api_floor.py"), "--config", str(config)]
    with tempfile.TemporaryFile() as stderr:
        started, wall_s, returncode, usage = timed(command, subprocess.DEVNULL, stderr, timeout_s)
        stderr.seek(0)
        stderr_text = stderr.read().decode("utf-8", "replace")
    run = Run("floor", repeat, wall_s, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024 / MB, returncode)
    try:
        summary = json.loads(stderr_text.strip().splitlines()[-1])
        run.records, run.reported_requests = summary["records"], summary["requests"]
    except (IndexError, KeyError, ValueError):
        run.errors.append("no summary line on stderr")
    if returncode != 0:
        run.errors.append(f"exit code {returncode}; stderr tail: {stderr_text[-1500:]}")
    read_log(run, log_path, started)
    return run


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
