"""Fixtures for end-to-end tests: an emulator on 127.0.0.1 and the real `source-dixa` CLI as a subprocess."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

from integration_tests.cli import ROOT, CliResult, cli_command, cli_env, final_state, parse_messages
from integration_tests.emulator import DixaEmulator, EmulatorConfig

__all__ = [
    "DIXA_API_STREAMS",
    "ROOT",
    "STREAMS",
    "CliResult",
    "Workspace",
    "cli_command",
    "cli_env",
    "final_state",
    "parse_messages",
]
DAY_MS = 86_400_000
# Every stream: its cursor (None: full refresh only) and its primary key.
STREAMS: dict[str, tuple[Optional[str], list[str]]] = {
    "conversation_export": ("updated_at", ["id"]),
    "message_export": ("created_at", ["id"]),
    "agents": (None, ["id"]),
    "end_users": (None, ["id"]),
    "teams": (None, ["id"]),
    "team_members": (None, ["team_id", "id"]),
    "queues": (None, ["id"]),
    "queue_members": (None, ["queue_id", "agentId"]),
    "tags": (None, ["id"]),
    "custom_attributes": (None, ["id"]),
    "contact_endpoints": (None, ["_type", "endpoint"]),
    "agent_presence": (None, ["userId", "requestTime"]),
    "activity_logs": ("activityTimestamp", ["id"]),
}
DIXA_API_STREAMS = tuple(name for name in STREAMS if not name.endswith("_export"))


@dataclass
class Workspace:
    """Files for one CLI invocation sequence, in a pytest tmp dir."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)

    def write(self, name: str, payload: Any) -> Path:
        target = self.path / name
        target.write_text(json.dumps(payload), encoding="utf-8")
        return target

    def catalog(self, streams: tuple[str, ...] = ("conversation_export",), sync_mode: str = "incremental") -> Path:
        """A configured catalog; a stream without a cursor is read in full refresh whatever `sync_mode` says."""
        configured = []
        for name in streams:
            cursor, key = STREAMS[name]
            mode = sync_mode if cursor else "full_refresh"
            configured.append(
                {
                    "stream": {
                        "name": name,
                        "json_schema": {},
                        "supported_sync_modes": ["full_refresh", "incremental"] if cursor else ["full_refresh"],
                        "source_defined_cursor": bool(cursor),
                        "default_cursor_field": [cursor] if cursor else [],
                        "source_defined_primary_key": [[field] for field in key],
                    },
                    "sync_mode": mode,
                    "destination_sync_mode": "append" if mode == "full_refresh" else "append_dedup",
                    "cursor_field": [cursor] if cursor else [],
                    "primary_key": [[field] for field in key],
                }
            )
        return self.write(f"catalog_{sync_mode}_{'_'.join(streams)}.json", {"streams": configured})

    def run(
        self,
        command: str,
        *,
        catalog: Optional[Path] = None,
        state: Any = None,
        debug: bool = False,
        config: Optional[dict[str, Any]] = None,
        timeout_s: float = 120,
    ) -> CliResult:
        args = [*cli_command(), command]
        if command != "spec":
            args += ["--config", str(self.write("config.json", config if config is not None else self.config))]
        if catalog is not None:
            args += ["--catalog", str(catalog)]
        if state is not None:
            args += ["--state", str(self.write("state.json", state))]
        if debug:
            args.append("--debug")
        process = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, env=cli_env())
        return CliResult(process.returncode, parse_messages(process.stdout), process.stdout, process.stderr)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """60 days of a small account, ending a day before 'now' in 2025; tests adjust it before the emulator starts."""
    return EmulatorConfig(
        conversations=300,
        messages_per_conversation=2.0,
        start_ms=1_735_689_600_000,
        end_ms=1_735_689_600_000 + 60 * DAY_MS,
    )


@pytest.fixture
def emulator(emulator_config: EmulatorConfig) -> Iterator[DixaEmulator]:
    with DixaEmulator(emulator_config) as running:
        yield running


@pytest.fixture
def workspace(tmp_path: Path, emulator: DixaEmulator, emulator_config: EmulatorConfig) -> Workspace:
    return Workspace(
        tmp_path,
        {
            "api_token": emulator_config.token,
            "start_date": "2025-01-01",
            "batch_size": 7,
            "api_url": emulator.url,
            "dixa_api_url": emulator.url,
            "requests_per_minute": 6000,
            "dixa_api_requests_per_second": 1000,
            # Tests change the account at "now" and read it straight away; the lag has tests of its own.
            "safety_lag_minutes": 0,
        },
    )
