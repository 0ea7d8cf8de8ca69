"""Running the `source-dixa` CLI and reading its Airbyte messages: shared by the tests, the demo and the bench.

Standard library only, so the demo and the benchmark can use it without pytest or the CDK.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("source-dixa")
    return [str(script)] if script.exists() else [sys.executable, str(ROOT / "main.py")]


@dataclass
class CliResult:
    returncode: int
    messages: list[dict[str, Any]]
    stdout: str
    stderr: str = ""

    def records(self, stream: Optional[str] = None) -> list[dict[str, Any]]:
        return [
            m["record"]["data"]
            for m in self.messages
            if m["type"] == "RECORD" and (stream is None or m["record"]["stream"] == stream)
        ]

    def ids(self, stream: str) -> list[Any]:
        return [r["id"] for r in self.records(stream)]

    def states(self, stream: str) -> list[dict[str, Any]]:
        return [
            m["state"]["stream"]["stream_state"]
            for m in self.messages
            if m["type"] == "STATE" and m["state"]["stream"]["stream_descriptor"]["name"] == stream
        ]

    def state_messages(self) -> list[dict[str, Any]]:
        return [m["state"] for m in self.messages if m["type"] == "STATE"]

    def errors(self) -> list[dict[str, Any]]:
        return [m["trace"]["error"] for m in self.messages if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]

    def connection_status(self) -> dict[str, Any]:
        return next(m["connectionStatus"] for m in self.messages if m["type"] == "CONNECTION_STATUS")

    def logs(self) -> list[str]:
        return [m["log"]["message"] for m in self.messages if m["type"] == "LOG"]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def parse_messages(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def final_state(result: CliResult) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for state in result.state_messages():
        latest[state["stream"]["stream_descriptor"]["name"]] = state
    return list(latest.values())


def read_killed_after(args: list[str], states: Optional[int]) -> list[dict[str, Any]]:
    """Run the CLI and SIGKILL it once it has printed `states` STATE messages (None: let it finish); its messages."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=cli_env())
    assert process.stdout is not None
    lines, states_seen = [], 0
    for line in process.stdout:
        lines.append(line)
        if line.startswith('{"type":"STATE"'):
            states_seen += 1
            if states is not None and states_seen == states:
                process.send_signal(signal.SIGKILL)
                break
    process.wait(timeout=60)
    return parse_messages("".join(lines))
