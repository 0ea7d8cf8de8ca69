"""`make demo`: a real sync of both streams against the bundled Dixa emulator, no token and no internet.

Starts the emulator on 127.0.0.1, then runs the installed `source-dixa` CLI exactly as Airbyte would:
check, discover, a full read, some changes in the "account", and an incremental read from the saved state.
Records land in demo/output/; the run exits non-zero if anything differs from the emulator's ground truth.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration_tests.cli import CliResult, cli_command, cli_env, final_state, parse_messages  # noqa: E402
from integration_tests.emulator import DixaEmulator, EmulatorConfig  # noqa: E402

OUT = ROOT / "demo" / "output"
DAY_MS = 86_400_000
STREAMS = {"conversation_export": "updated_at", "message_export": "created_at"}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    now_ms = int(time.time() * 1000)
    start_ms = (now_ms // DAY_MS - 100) * DAY_MS  # midnight UTC, 100 days ago: four 31-day windows and a bit
    emulator_config = EmulatorConfig(conversations=1500, start_ms=start_ms, end_ms=now_ms - 60_000)
    with DixaEmulator(emulator_config) as emulator:
        config = {
            "api_token": emulator_config.token,
            "start_date": time.strftime("%Y-%m-%d", time.gmtime(start_ms / 1000)),
            "batch_size": 31,
            "api_url": emulator.url,
            # The real Exports API allows about 10 a minute; the emulator is local, so the demo need not wait.
            "requests_per_minute": 600,
        }
        config_path = _write("config.json", config)
        print(
            f"Dixa emulator on {emulator.url}: {len(emulator.conversations())} conversations, "
            f"{len(emulator.messages())} messages (seeded, synthetic)."
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
                    "sync_mode": "incremental",
                    "destination_sync_mode": "append_dedup",
                    "cursor_field": stream["default_cursor_field"],
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
        expected = {
            "conversation_export": emulator.expected_conversation_ids(start_ms, first.ended_ms),
            "message_export": emulator.expected_message_ids(start_ms, first.ended_ms),
        }
        problems = first.compare(expected, since_ms=start_ms)

        # The account moves on: agents reply in 25 conversations, 10 conversations are new.
        changed_at_ms = int(time.time() * 1000)
        updated = [c["id"] for c in emulator.conversations()[::60]][:25]
        replies = emulator.reply_to_conversations(updated, changed_at_ms)
        added = emulator.add_conversations(10, changed_at_ms)
        print(f"\n   ...meanwhile in Dixa: {len(replies)} replies in existing conversations, {len(added)} new ones.")
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
        resume_ms = {name: first_state_value(first_state, name) for name in STREAMS}
        expected_second = {
            "conversation_export": emulator.expected_conversation_ids(
                resume_ms["conversation_export"], second.ended_ms
            ),
            "message_export": emulator.expected_message_ids(resume_ms["message_export"], second.ended_ms),
        }
        problems += second.compare(expected_second, since_ms=None)
        if not set(updated) | set(added) <= set(second.ids("conversation_export")):
            problems.append("the incremental read missed an updated or new conversation")
        if not set(replies) <= set(second.ids("message_export")):
            problems.append("the incremental read missed a new message")

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

    def window_logs(self, stream: str) -> list[str]:
        return [line for line in self.logs() if line.startswith(f"{stream}: window ")]

    def final_state(self) -> list[dict[str, Any]]:
        return final_state(self)

    def compare(self, expected: dict[str, set[Any]], since_ms: int | None) -> list[str]:
        problems = []
        for stream, want in expected.items():
            ids = self.ids(stream)
            if len(ids) != len(set(ids)):
                problems.append(f"{self.label} read emitted {len(ids) - len(set(ids))} {stream} records twice")
            if set(ids) != want:
                problems.append(
                    f"{self.label} read of {stream}: {len(want - set(ids))} missing, {len(set(ids) - want)} unexpected"
                )
        return problems


def first_state_value(states: list[dict[str, Any]], stream: str) -> int:
    for state in states:
        if state["stream"]["stream_descriptor"]["name"] == stream:
            return int(state["stream"]["stream_state"][STREAMS[stream]])
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
        for stream in STREAMS:
            with (OUT / f"{stream}.{run.label}.jsonl").open("w", encoding="utf-8") as handle:
                for record in run.records(stream):
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return run


def _report(title: str, run: Run) -> None:
    print(f"\n{title}: {run.seconds:.1f} s")
    print(f"   {'stream':<22}{'windows':>8}{'records':>9}  final state")
    for stream in STREAMS:
        states = run.states(stream)
        final = states[-1] if states else {}
        print(f"   {stream:<22}{len(run.window_logs(stream)):>8}{len(run.records(stream)):>9}  {json.dumps(final)}")
    for stream in STREAMS:
        for line in run.window_logs(stream)[:6]:
            print(f"     . {line}")


def _write(name: str, payload: Any) -> Path:
    path = OUT / name
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def _fail(message: str) -> int:
    print(f"\nDEMO FAILED: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
