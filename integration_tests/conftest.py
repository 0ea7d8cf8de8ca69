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

__all__ = ["ROOT", "CliResult", "Workspace", "cli_command", "cli_env", "final_state", "parse_messages"]
DAY_MS = 86_400_000
CURSORS = {"conversation_export": "updated_at", "message_export": "created_at"}


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
        configured = {
            "streams": [
                {
                    "stream": {
                        "name": name,
                        "json_schema": {},
                        "supported_sync_modes": ["full_refresh", "incremental"],
                        "source_defined_cursor": True,
                        "default_cursor_field": [CURSORS[name]],
                        "source_defined_primary_key": [["id"]],
                    },
                    "sync_mode": sync_mode,
                    "destination_sync_mode": "append" if sync_mode == "full_refresh" else "append_dedup",
                    "cursor_field": [CURSORS[name]],
                    "primary_key": [["id"]],
                }
                for name in streams
            ]
        }
        return self.write(f"catalog_{sync_mode}_{'_'.join(streams)}.json", configured)

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
            "requests_per_minute": 6000,
        },
    )
