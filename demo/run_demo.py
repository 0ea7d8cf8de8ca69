"""`make demo`: a real sync of all 13 streams against the bundled Dixa emulator, no token and no internet.

Starts the emulator (both Dixa services, on 127.0.0.1), then runs the installed `source-dixa` CLI exactly as Airbyte
would: check, discover, a full read, some changes in the "account", and an incremental read from the saved state.
Records land in demo/output/; the run exits non-zero if anything differs from the emulator's ground truth.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration_tests.cli import CliResult, cli_command, cli_env, final_state, parse_messages  # noqa: E402
from integration_tests.emulator import DixaEmulator, EmulatorConfig  # noqa: E402
from source_dixa.timestamps import iso_to_ms, normalize_iso  # noqa: E402

OUT = ROOT / "demo" / "output"
DAY_MS = 86_400_000
# Every stream: its cursor (None: full refresh only) and its primary key.
STREAMS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "conversation_export": ("updated_at", ("id",)),
    "message_export": ("created_at", ("id",)),
    "agents": (None, ("id",)),
    "end_users": (None, ("id",)),
    "teams": (None, ("id",)),
    "team_members": (None, ("team_id", "id")),
    "queues": (None, ("id",)),
    "queue_members": (None, ("queue_id", "agentId")),
    "tags": (None, ("id",)),
    "custom_attributes": (None, ("id",)),
    "contact_endpoints": (None, ("_type", "endpoint")),
    "agent_presence": (None, ("userId", "requestTime")),
    "activity_logs": ("activityTimestamp", ("id",)),
}
SUMMARY = re.compile(r"^(\w+): (\d+) requests?, (\d+) x 429")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    now_ms = int(time.time() * 1000)
    start_ms = (now_ms // DAY_MS - 100) * DAY_MS  # midnight UTC, 100 days ago: four 31-day windows and a bit
    emulator_config = EmulatorConfig(
        conversations=1500,
        start_ms=start_ms,
        end_ms=now_ms - 60_000,
        # The Dixa API's documented limit, enforced: 10 requests a second, bursts of 4 (dixa-api.md §2).
        dixa_rate_per_s=10,
        page_cap=100,
    )
    with DixaEmulator(emulator_config) as emulator:
        config = {
            "api_token": emulator_config.token,
            "start_date": time.strftime("%Y-%m-%d", time.gmtime(start_ms / 1000)),
            "batch_size": 31,
            "api_url": emulator.url,
            "dixa_api_url": emulator.url,
            # The real Exports API allows about 10 a minute; the emulator is local, so the demo need not wait.
            "requests_per_minute": 600,
            # The demo changes the account and reads it straight away; a real sync keeps the default 5 minutes.
            "safety_lag_minutes": 0,
        }
        config_path = _write("config.json", config)
        counts = emulator.counts()
        print(
            f"Dixa emulator on {emulator.url} (seeded, synthetic): "
            + ", ".join(f"{count} {name}" for name, count in counts.items())
            + "."
        )

        check = _run("check", "--config", str(config_path))
        status = next(m["connectionStatus"] for m in check.messages if m["type"] == "CONNECTION_STATUS")
        print(f"\n1. check     -> {status['status']}")
        if status["status"] != "SUCCEEDED":
            return _fail(f"check failed: {status.get('message')}")

        discover = _run("discover", "--config", str(config_path))
        catalog = next(m["catalog"] for m in discover.messages if m["type"] == "CATALOG")
        names = [s["name"] for s in catalog["streams"]]
        print(f"2. discover  -> streams {', '.join(names)}")
        configured = {
            "streams": [
                {
                    "stream": stream,
                    # Incremental where the stream has a cursor; the lists are read whole (overwrite) every sync.
                    "sync_mode": "incremental" if stream.get("default_cursor_field") else "full_refresh",
                    "destination_sync_mode": "append_dedup" if stream.get("default_cursor_field") else "overwrite",
                    "cursor_field": stream.get("default_cursor_field", []),
                    "primary_key": stream["source_defined_primary_key"],
                }
                for stream in catalog["streams"]
            ]
        }
        catalog_path = _write("configured_catalog.json", configured)

        first = _run("read", "--config", str(config_path), "--catalog", str(catalog_path), label="full")
        first_state = first.final_state()
        state_path = _write("state.json", first_state)
        _report("3. read (first sync, from start_date)", first)
        problems = first.compare(_expected(emulator, {}, first.ended_ms, start_ms))

        # The account moves on: agents reply in 25 conversations, 10 conversations are new, 40 events are logged,
        # and 3 new end users write in.
        changed_at_ms = int(time.time() * 1000)
        updated = [c["id"] for c in emulator.conversations()[::60]][:25]
        replies = emulator.reply_to_conversations(updated, changed_at_ms)
        added = emulator.add_conversations(10, changed_at_ms)
        events = emulator.add_activity_events(40, changed_at_ms)
        end_users = emulator.add_end_users(3)
        print(
            f"\n   ...meanwhile in Dixa: {len(replies)} replies in existing conversations, {len(added)} new ones, "
            f"{len(events)} activity-log events, {len(end_users)} new end users."
        )
        time.sleep(0.01)

        second = _run(
            "read",
            "--config",
            str(config_path),
            "--catalog",
            str(catalog_path),
            "--state",
            str(state_path),
            label="incremental",
        )
        _write("state.json", second.final_state())
        _report("4. read (incremental, from the saved state)", second)
        resume_ms = {name: first_state_value(first_state, name) for name, (cursor, _) in STREAMS.items() if cursor}
        problems += second.compare(_expected(emulator, resume_ms, second.ended_ms, start_ms))
        if not set(updated) | set(added) <= set(second.ids("conversation_export")):
            problems.append("the incremental read missed an updated or new conversation")
        if not set(replies) <= set(second.ids("message_export")):
            problems.append("the incremental read missed a new message")
        if not set(events) <= set(second.ids("activity_logs")):
            problems.append("the incremental read missed a new activity-log event")
        if not set(end_users) <= set(second.ids("end_users")):
            problems.append("the full refresh of end_users missed a new end user")

    print(f"\nRecords and states are in {OUT.relative_to(ROOT)}/ (one JSON record per line).")
    if problems:
        return _fail("; ".join(problems))
    print("Every record matches the emulator's ground truth: nothing missing, nothing twice.")
    return 0


class Run(CliResult):
    """One CLI call: its messages, plus what the demo reports about it."""

    def __init__(self, label: str, result: CliResult, seconds: float, ended_ms: int) -> None:
        super().__init__(result.returncode, result.messages, result.stdout, result.stderr)
        self.label, self.seconds, self.ended_ms = label, seconds, ended_ms

    def final_state(self) -> list[dict[str, Any]]:
        return final_state(self)

    def keys(self, stream: str) -> list[tuple[Any, ...]]:
        return [tuple(record.get(field) for field in STREAMS[stream][1]) for record in self.records(stream)]

    def requests(self, stream: str) -> tuple[int, int]:
        """Requests and 429s, from the connector's own summary line for the stream."""
        for line in self.logs():
            match = SUMMARY.match(line)
            if match and match.group(1) == stream:
                return int(match.group(2)), int(match.group(3))
        return 0, 0

    def compare(self, expected: dict[str, set[tuple[Any, ...]]]) -> list[str]:
        problems = []
        for stream, want in expected.items():
            keys = self.keys(stream)
            if len(keys) != len(set(keys)):
                problems.append(f"{self.label} read emitted {len(keys) - len(set(keys))} {stream} records twice")
            if set(keys) != want:
                problems.append(
                    f"{self.label} read of {stream}: {len(want - set(keys))} missing, "
                    f"{len(set(keys) - want)} unexpected"
                )
        return problems


def _expected(
    emulator: DixaEmulator, resume_ms: dict[str, int], ended_ms: int, start_ms: int
) -> dict[str, set[tuple[Any, ...]]]:
    """The keys each stream must deliver: the time-filtered ones from their saved state, the lists whole."""
    since = {name: resume_ms.get(name, start_ms) for name in ("conversation_export", "message_export", "activity_logs")}
    expected = {
        "conversation_export": {
            (i,) for i in emulator.expected_conversation_ids(since["conversation_export"], ended_ms)
        },
        "message_export": {(i,) for i in emulator.expected_message_ids(since["message_export"], ended_ms)},
        "activity_logs": {(i,) for i in emulator.expected_activity_ids(since["activity_logs"], ended_ms)},
    }
    for stream, (cursor, key) in STREAMS.items():
        if cursor is None:
            expected[stream] = {
                tuple(_emitted(stream, record).get(field) for field in key) for record in emulator.records(stream)
            }
    return expected


def _emitted(stream: str, record: dict[str, Any]) -> dict[str, Any]:
    """A ground-truth record as the connector emits it: key fields derived, Dixa's timestamps as plain UTC."""
    if stream == "contact_endpoints":
        return {**record, "endpoint": record.get("address") or record.get("number")}
    if stream == "agent_presence":
        return {**record, "requestTime": normalize_iso(record.get("requestTime"))}
    return record


def first_state_value(states: list[dict[str, Any]], stream: str) -> int:
    for state in states:
        if state["stream"]["stream_descriptor"]["name"] == stream:
            value = state["stream"]["stream_state"][STREAMS[stream][0]]
            as_ms = iso_to_ms(value) if isinstance(value, str) else int(value)
            if as_ms is not None:
                return as_ms
    raise SystemExit(f"no state for {stream}")


def _run(*args: str, label: str = "") -> Run:
    started = time.monotonic()
    process = subprocess.run([*cli_command(), *args], capture_output=True, text=True, env=cli_env())
    ended_ms = int(time.time() * 1000)
    result = CliResult(process.returncode, parse_messages(process.stdout), process.stdout, process.stderr)
    errors = [error["message"] for error in result.errors()]
    if process.returncode != 0 or errors:
        print(process.stderr[-2000:], file=sys.stderr)
        raise SystemExit(f"source-dixa {args[0]} failed (exit {process.returncode}): {'; '.join(errors)}")
    run = Run(label or args[0], result, time.monotonic() - started, ended_ms)
    if args[0] == "read":
        for stream in STREAMS:  # one file per stream and read
            with (OUT / f"{stream}.{run.label}.jsonl").open("w", encoding="utf-8") as handle:
                for record in run.records(stream):
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return run


def _report(title: str, run: Run) -> None:
    print(f"\n{title}: {run.seconds:.1f} s")
    print(f"   {'stream':<22}{'records':>8}{'requests':>10}{'429s':>6}  state")
    for stream, (cursor, _) in STREAMS.items():
        states = run.states(stream)
        final = json.dumps(states[-1]) if cursor and states else "(full refresh)"
        requests, limited = run.requests(stream)
        print(f"   {stream:<22}{len(run.records(stream)):>8}{requests:>10}{limited:>6}  {final}")


def _write(name: str, payload: Any) -> Path:
    path = OUT / name
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def _fail(message: str) -> int:
    print(f"\nDEMO FAILED: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
